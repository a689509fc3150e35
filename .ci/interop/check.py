#!/usr/bin/env python3
"""Checks an outcome-audit evidence bundle with Python tools that never saw its code.

    python check.py BUNDLE [--key TRUSTED.pub.pem]

Three published packages, each on the unchanged bundle (must accept) and on tampered
copies (must reject):

- securesystemslib: `Envelope.verify` of attestation.dsse.json under the public key;
  a one-byte change to the payload, or to the signature, or another key, is rejected.
- in-toto-attestation: the signed Statement validates (`Statement.validate`), its
  predicate parses strictly as SLSA Provenance v1 and has the fields SLSA requires;
  Statements and predicates with a required field broken are rejected.
- frictionless: datapackage.json validates against the embedded inputs (bytes, SHA-256,
  table headers); a one-byte change to an input is rejected with `hash-count`.

Every case prints one line. The exit status is 1 if any case came out the wrong way
(a good bundle rejected or a tampered one accepted), 0 otherwise. The versions tested
are pinned in run.sh beside this file.
"""

import argparse
import base64
import copy
import hashlib
import json
import pathlib
import shutil
import sys
import tempfile

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from frictionless import validate
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"

wrong = []


def case(tool, name, expect_accept, check):
    """Runs `check`; it accepts by returning (a short detail or None), rejects by raising."""
    try:
        detail = check()
        accepted = True
    except Exception as e:  # every rejection, whatever the tool raises
        accepted = False
        detail = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
    right = accepted == expect_accept
    verdict = "accepted" if accepted else "rejected"
    print(f"{'ok  ' if right else 'FAIL'} [{tool}] {name}: {verdict}" + (f" ({detail})" if detail else ""))
    if not right:
        wrong.append(f"[{tool}] {name}: {verdict}, expected {'accepted' if expect_accept else 'rejected'}")


def flip_byte(data: bytes, index: int) -> bytes:
    """`data` with one byte changed (lowest bit flipped) at `index`."""
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


# --- securesystemslib: the DSSE signature -------------------------------------------


def dsse_checks(envelope_dict, key):
    def verify(env_dict, keys=(key,)):
        def run():
            envelope = Envelope.from_dict(copy.deepcopy(env_dict))
            if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
                raise ValueError(f"payloadType is {envelope.payload_type!r}")
            accepted = envelope.verify(list(keys), 1)
            return "signed by " + ", ".join(accepted)

        return run

    case("securesystemslib", "Envelope.verify on the unchanged envelope", True, verify(envelope_dict))

    payload = base64.b64decode(envelope_dict["payload"])
    tampered = copy.deepcopy(envelope_dict)
    tampered["payload"] = base64.b64encode(flip_byte(payload, len(payload) // 2)).decode()
    case("securesystemslib", "one byte of the payload changed", False, verify(tampered))

    sig = base64.b64decode(envelope_dict["signatures"][0]["sig"])
    tampered = copy.deepcopy(envelope_dict)
    tampered["signatures"][0]["sig"] = base64.b64encode(flip_byte(sig, 0)).decode()
    case("securesystemslib", "one byte of the signature changed", False, verify(tampered))

    other = SSlibKey.from_crypto(Ed25519PrivateKey.generate().public_key())
    case("securesystemslib", "another ed25519 key", False, verify(envelope_dict, keys=(other,)))

    # Only a verified payload is read any further.
    try:
        Envelope.from_dict(copy.deepcopy(envelope_dict)).verify([key], 1)
    except Exception as e:
        print(f"FAILED: the envelope does not verify under the key ({e}); nothing more is checked",
              file=sys.stderr)
        sys.exit(1)
    return payload


# --- in-toto-attestation: the Statement and its SLSA predicate ------------------------


def provenance_fields(predicate):
    """Parses the predicate strictly as SLSA Provenance v1 and checks the fields SLSA v1
    requires: buildDefinition.buildType and .externalParameters, runDetails.builder.id,
    and that every resolved dependency is a valid ResourceDescriptor."""
    prov = json_format.ParseDict(predicate, provenance_pb2.Provenance())  # unknown field: error
    missing = []
    if not prov.HasField("build_definition"):
        missing.append("buildDefinition")
    if not prov.build_definition.build_type:
        missing.append("buildDefinition.buildType")
    if not prov.build_definition.HasField("external_parameters"):
        missing.append("buildDefinition.externalParameters")
    if not prov.run_details.builder.id:
        missing.append("runDetails.builder.id")
    if missing:
        raise ValueError("SLSA Provenance v1 requires " + ", ".join(missing))
    for dep in prov.build_definition.resolved_dependencies:
        ResourceDescriptor.copy_from_pb(dep).validate()
    return (
        f"buildType {prov.build_definition.build_type}, builder {prov.run_details.builder.id}, "
        f"{len(prov.build_definition.resolved_dependencies)} resolved dependencies"
    )


def statement_checks(payload: bytes, bundle: pathlib.Path):
    statement = json.loads(payload)

    def check(st):
        def run():
            Statement.copy_from_pb(json_format.ParseDict(st, statement_pb2.Statement())).validate()
            if st.get("predicateType") != SLSA_PROVENANCE_V1:
                raise ValueError(f"predicateType is {st.get('predicateType')!r}")
            return f"{len(st['subject'])} subjects; " + provenance_fields(st["predicate"])

        return run

    case("in-toto-attestation", "Statement v1 with SLSA Provenance v1", True, check(statement))

    def subjects_match():
        for s in statement["subject"]:
            actual = hashlib.sha256((bundle / s["name"]).read_bytes()).hexdigest()
            if actual != s["digest"]["sha256"]:
                raise ValueError(f"{s['name']} differs from the signed subject")
        return f"{len(statement['subject'])} files hashed with hashlib"

    case("in-toto-attestation", "every subject is the file in the bundle", True, subjects_match)

    def broken(edit):
        st = copy.deepcopy(statement)
        edit(st)
        return check(st)

    case("in-toto-attestation", "wrong _type", False,
         broken(lambda st: st.update({"_type": "https://in-toto.io/Statement/v0.1"})))
    case("in-toto-attestation", "a subject without digest", False,
         broken(lambda st: st["subject"][0].pop("digest")))
    case("in-toto-attestation", "no subjects", False, broken(lambda st: st.update({"subject": []})))
    case("in-toto-attestation", "predicate without runDetails.builder.id", False,
         broken(lambda st: st["predicate"]["runDetails"]["builder"].pop("id")))
    case("in-toto-attestation", "predicate without buildDefinition.buildType", False,
         broken(lambda st: st["predicate"]["buildDefinition"].pop("buildType")))
    case("in-toto-attestation", "predicate with a field SLSA does not define", False,
         broken(lambda st: st["predicate"]["buildDefinition"].update({"buildTypo": "x"})))


# --- frictionless: the inputs against datapackage.json ---------------------------------


def frictionless_checks(bundle: pathlib.Path):
    def check(root: pathlib.Path, expect_error=None):
        def run():
            report = validate(str(root / "datapackage.json"))
            rows = [
                f"{t.name} {t.stats.get('rows') if t.stats.get('rows') is not None else '-'} rows"
                for t in report.tasks
            ]
            if not report.valid:
                errors = sorted({row[0] for row in report.flatten(["type"])})
                raise ValueError("invalid: " + ", ".join(errors))
            return "valid: " + ", ".join(rows)

        return run

    case("frictionless", "datapackage.json against the embedded inputs", True, check(bundle))

    with tempfile.TemporaryDirectory() as tmp:
        copy_root = pathlib.Path(tmp) / "bundle"
        shutil.copytree(bundle, copy_root)
        dp = json.loads((copy_root / "datapackage.json").read_text())
        for resource in dp["resources"]:
            path = copy_root / resource["path"]
            data = path.read_bytes()
            # A byte in the last line, so the header (and the table shape) are unchanged.
            index = data.rstrip(b"\n").rfind(b"\n") + 2
            path.write_bytes(flip_byte(data, index))

            def hash_count_only():
                try:
                    check(copy_root)()
                except ValueError as e:
                    if "hash-count" not in str(e):
                        raise ValueError(f"rejected for another reason: {e}")
                    raise
                return "the change went unnoticed"

            case("frictionless", f"one byte of {resource['path']} changed", False, hash_count_only)
            path.write_bytes(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=pathlib.Path)
    parser.add_argument("--key", type=pathlib.Path, help="trusted SPKI PEM (default: the bundle's signer.pub.pem)")
    args = parser.parse_args()
    bundle = args.bundle
    key_path = args.key or bundle / "signer.pub.pem"
    key = SSlibKey.from_crypto(load_pem_public_key(key_path.read_bytes()))
    print(f"bundle {bundle}, key {key_path} (key id {key.keyid})")

    envelope = json.loads((bundle / "attestation.dsse.json").read_text())
    payload = dsse_checks(envelope, key)
    statement_checks(payload, bundle)
    frictionless_checks(bundle)

    if wrong:
        print(f"FAILED: {len(wrong)} case(s) came out wrong:", file=sys.stderr)
        for w in wrong:
            print("  " + w, file=sys.stderr)
        sys.exit(1)
    print("all cases as expected")


if __name__ == "__main__":
    main()
