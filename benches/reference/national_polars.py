#!/usr/bin/env python3
"""The national benchmark's audit written in Python with polars, for comparison.

Reference tool, not a test dependency. It computes what `benches/national.toml` asks
for, the way an analyst would write it with Python polars, and prints the figures, the
time taken and the peak memory, beside the same floor the Rust benchmark uses (SHA-256
of every input on a thread of its own while polars parses the columns as text). It
writes no evidence: no ledgers, no copies, no signature. Its counts are a second,
independent computation of the national `run`'s results (docs/BENCHMARKS.md compares
them).

Usage:  python3 benches/reference/national_polars.py DIR [REPEAT]
DIR holds people.csv and convictions.csv as `cargo bench --bench national` generates
them (`outcome-audit synth --preset national --seed 7`). Needs the `polars` package.

The rules, as benches/national.toml and docs/spec.md state them:
- cohort: discharge_date in 2011 (inclusive); excluded if discharge_reason is
  deported or time_served_on_remand, or breach_only is Y (first rule that holds);
  of the rows left, a person's earliest index date is kept (the earlier row in the file
  on equal dates);
- each conviction row of a member, first check that applies: missing offence or
  sanction date; exact duplicate of an earlier row (every column); sanction type not
  `conviction`; offence_code `breach`; offence_code ZZ99, X000 or 99ZZ; offence before
  the index date; offence on or after index + 12 calendar months (clamped at month
  ends); sanction before offence; sanction on or after index + 18 calendar months
  (counted in one step from the index date); otherwise counted;
- reoffender: at least one counted row; offences: counted rows; events: distinct
  non-blank court_event_id among a member's counted rows.
"""

import hashlib
import resource
import sys
import threading
import time
from pathlib import Path

import polars as pl

PEOPLE_COLUMNS = ["offender_ref", "discharge_date", "discharge_reason", "breach_only"]
CONVICTION_COLUMNS = [
    "offender_ref",
    "offence_date",
    "disposal_date",
    "disposal_type",
    "court_event_id",
    "offence_code",
]


def sha256_files(paths, out):
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        out[path] = digest.hexdigest()


def read_text(path, columns):
    return pl.read_csv(
        path,
        columns=columns,
        schema_overrides={c: pl.String for c in columns},
        infer_schema=False,
    )


def floor(paths):
    """SHA-256 beside polars' parse of the columns as text: the Rust benchmark's floor."""
    digests = {}
    hasher = threading.Thread(target=sha256_files, args=(paths, digests))
    hasher.start()
    read_text(paths[0], PEOPLE_COLUMNS)
    read_text(paths[1], CONVICTION_COLUMNS)
    hasher.join()
    return digests


def audit(paths):
    digests = {}
    hasher = threading.Thread(target=sha256_files, args=(paths, digests))
    hasher.start()
    date = lambda c: pl.col(c).str.strip_chars().str.to_date("%Y-%m-%d", strict=True)
    people = (
        read_text(paths[0], PEOPLE_COLUMNS)
        .with_row_index("row")
        .with_columns(date("discharge_date").alias("index_date"))
    )
    in_period = people.filter(
        pl.col("index_date").is_between(pl.date(2011, 1, 1), pl.date(2011, 12, 31))
    )
    excluded = (
        pl.col("discharge_reason").is_in(["deported", "time_served_on_remand"])
        | (pl.col("breach_only") == "Y")
    )
    members = (
        in_period.filter(~excluded.fill_null(False))
        .sort(["index_date", "row"])
        .unique(subset="offender_ref", keep="first", maintain_order=True)
        .select(
            "offender_ref",
            "index_date",
            pl.col("index_date").dt.offset_by("12mo").alias("window_end"),
            pl.col("index_date").dt.offset_by("18mo").alias("lag_end"),
        )
    )
    convictions = read_text(paths[1], CONVICTION_COLUMNS)
    rows = convictions.join(
        members, on="offender_ref", how="inner", maintain_order="left"
    ).with_columns(
        date("offence_date").alias("offence"), date("disposal_date").alias("sanction")
    )
    # An exact duplicate: the same text in every column but the dates, which are
    # compared as dates; the earliest row in the file (rows are in file order) is the
    # original.
    key = [c for c in CONVICTION_COLUMNS if c not in ("offence_date", "disposal_date")]
    key += ["offence", "sanction"]
    rows = rows.with_columns((~pl.struct(key).is_first_distinct()).alias("copy"))
    code = pl.col("offence_code")
    counted = (
        pl.col("offence").is_not_null()
        & pl.col("sanction").is_not_null()
        & ~pl.col("copy")
        & (pl.col("disposal_type") == "conviction")
        & ~code.is_in(["breach", "ZZ99", "X000", "99ZZ"]).fill_null(False)
        & (pl.col("offence") >= pl.col("index_date"))
        & (pl.col("offence") < pl.col("window_end"))
        & (pl.col("sanction") >= pl.col("offence"))
        & (pl.col("sanction") < pl.col("lag_end"))
    )
    per_person = (
        rows.filter(counted)
        .group_by("offender_ref")
        .agg(
            pl.len().alias("offences"),
            pl.col("court_event_id")
            .filter(pl.col("court_event_id").str.strip_chars() != "")
            .str.strip_chars()
            .n_unique()
            .alias("events"),
        )
    )
    hasher.join()
    return {
        "people": members.height,
        "reoffenders": per_person.height,
        "offences": int(per_person["offences"].sum()),
        "events": int(per_person["events"].sum()),
        "digests": digests,
    }


def best(repeat, f):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - start)
    return min(times), out


def main():
    folder = Path(sys.argv[1])
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    paths = [str(folder / "people.csv"), str(folder / "convictions.csv")]
    sha256_files(paths, {})  # warm the page cache
    floor_time, _ = best(repeat, lambda: floor(paths))
    audit_time, figures = best(repeat, lambda: audit(paths))
    print(f"polars {pl.__version__}, {pl.thread_pool_size()} threads")
    print(f"floor (hash + parse):  {floor_time:7.3f} s")
    print(f"audit (hash + parse + compute, no evidence): {audit_time:7.3f} s"
          f" = {audit_time / floor_time:.2f} x floor")
    for name in ("people", "reoffenders", "offences", "events"):
        print(f"{name}: {figures[name]}")
    for path, digest in figures["digests"].items():
        print(f"sha256 {Path(path).name}: {digest}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    inputs = sum(Path(p).stat().st_size for p in paths)
    print(f"peak memory: {peak / 1e6:.0f} MB = {peak / inputs:.2f} x input")


if __name__ == "__main__":
    main()
