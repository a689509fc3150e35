//! Nearest-neighbour matching on the logit of the propensity score.
//!
//! The Peterborough social impact bond and the Justice Data Lab compared each treated
//! person with people drawn from national records who had a similar propensity score.
//! An auditor has to rebuild that comparison group exactly, and show why each treated
//! person got the controls they got, so this module pins every choice an evaluator's
//! software usually leaves to chance: ties, processing order, input order. It is
//! **outcome-blind**: a [`Unit`] carries no outcome, so the matching cannot depend on one.
//!
//! # The rules
//!
//! 1. **Distance.** The distance between treated unit `t` and control `c` is
//!    `|logit_t − logit_c|`, one `f64` subtraction rounded to nearest, then its absolute
//!    value. A logit of `-0.0` is read as `0.0` (the distances are the same).
//! 2. **Eligibility.** Control `c` is eligible for `t` iff both have the same `stratum`
//!    (the exact-matching key, compared byte for byte) and either there is no caliper or
//!    `distance ≤ caliper`: a control *on* the caliper line is inside.
//! 3. **Total order of candidates.** For one treated unit, candidates are ranked by
//!    distance, then by the control's `id` in byte order, then by the control's caller
//!    `index`. Indices must be unique on each side, so this order has no ties.
//! 4. **Up to k each.** Each treated unit takes the first `k` (= [`MatchOptions::ratio`])
//!    eligible, available controls in that order; `rank` 1 is the nearest. A unit that
//!    finds at least one but fewer than `k` keeps what it found and is listed in
//!    [`Matching::partial`] with how many and why; a unit that finds none is listed in
//!    [`Matching::unmatched`] with why.
//! 5. **Without replacement**, treated units are processed hardest-to-match first:
//!    descending logit, ties by `id` (byte order, ascending), then by `index` (ascending).
//!    A control taken by one treated unit is unavailable to every later one. **With
//!    replacement** each treated unit takes its `k` nearest independently (processing
//!    order cannot matter) and a control may serve several treated units.
//! 6. **Why a unit got fewer than `k`.** Let `n` be the number of controls in its stratum
//!    and `E` the number of those within the caliper, ignoring whether they were already
//!    taken (`E = n` without a caliper). A unit that got `m < k` controls:
//!    - if `m < min(k, E)`, controls it could have had were taken by earlier treated
//!      units: [`UnmatchedReason::PoolExhausted`] / [`ShortfallReason::PoolExhausted`]
//!      (only possible without replacement);
//!    - otherwise, if some control of the stratum lies outside the caliper, the caliper is
//!      what stopped it: `OutsideCaliper`, carrying the distance of the nearest control
//!      outside the caliper (for an unmatched unit, simply its nearest control);
//!    - otherwise the stratum has no further control: [`UnmatchedReason::NoControlInStratum`]
//!      when it has none at all, [`ShortfallReason::StratumTooSmall`] when it has fewer
//!      than `k`.
//!
//!    `OutsideCaliper` and the stratum reasons depend only on the data, never on the
//!    processing order.
//! 7. **Weights, exactly.** A treated unit with `m ≥ 1` matched controls gives each of them
//!    weight `1/m`; a control's weight is the sum over the treated units it serves. All
//!    weights are fractions over `L = lcm(1..=k)` ([`weight_denominator`]), so a [`Weight`]
//!    is the integer numerator and sums are exact. The weights of all controls add up to
//!    `L` times the number of treated units with at least one match.
//! 8. **Errors.** A non-finite logit on either side, `k = 0`, `k >` [`MAX_RATIO`], a
//!    negative or non-finite caliper, or an index used twice on one side is a
//!    [`MatchError`]; the error names the offending unit with the lowest index, so it does
//!    not depend on input order either.
//! 9. **Output order.** Pairs by (treated index, rank); partial and unmatched units by
//!    treated index; control weights by pool index. Shuffling either input changes nothing.
//!
//! # How it runs fast
//!
//! Each stratum's pool (only strata that have a treated unit) is sorted once by
//! (logit, id, index). A treated unit binary-searches its logit and walks outward on both
//! sides; on each side the distance never decreases, so the controls at the next distance
//! form a contiguous run found by binary search, and a run of one logit value is already
//! in (id, index) order. Taken controls are skipped with "next free slot" union-find links
//! in each direction, so a walk never rescans them. Matching 3,000 treated units against a
//! pool of 1,000,000 costs about one sort of the pool.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// The largest matching ratio `k` accepted. `lcm(1..=20) = 232,792,560 < 2^28`, so a
/// weight numerator times any realistic count or sum of counts stays far inside `u64`.
pub const MAX_RATIO: usize = 20;

/// One person offered to the matcher: a treated person or a member of the comparison pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit<'a> {
    /// The caller's index for this unit (unique on its side); outputs refer to units by it.
    pub index: usize,
    /// Person id; breaks distance ties in byte order.
    pub id: &'a str,
    /// Logit of the propensity score; must be finite.
    pub logit: f64,
    /// Exact-matching key: the exact-match column values and the cohort period, joined by
    /// the caller. Units only match within the same stratum.
    pub stratum: &'a str,
}

/// How to match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchOptions {
    /// `k`, the number of controls sought for each treated unit (1 ..= [`MAX_RATIO`]).
    pub ratio: usize,
    /// Largest eligible distance on the logit scale, inclusive, or none. The caller
    /// computes it, usually as `caliper_sd × SD(logit)` with `caliper_sd = 0.2`.
    pub caliper: Option<f64>,
    /// Whether a control may serve several treated units.
    pub replacement: bool,
}

/// A control's total weight, as the numerator of a fraction over
/// [`Matching::weight_denominator`] (`= lcm(1..=k)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(pub u64);

impl Weight {
    /// The numerator over `lcm(1..=k)`.
    pub fn numerator(self) -> u64 {
        self.0
    }
}

/// One treated–control link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    /// The treated unit's caller index.
    pub treated: usize,
    /// The control's caller index (in the pool).
    pub control: usize,
    /// 1 ..= k, nearest first in the documented total order.
    pub rank: usize,
    /// `|logit_t − logit_c|`.
    pub distance: f64,
}

/// Why a treated unit got no control at all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnmatchedReason {
    /// The pool has no control in the unit's stratum.
    NoControlInStratum,
    /// Every control in the stratum lies outside the caliper; the nearest is this far away.
    OutsideCaliper { nearest_distance: f64 },
    /// Controls within the caliper exist, but earlier treated units took them all
    /// (matching without replacement).
    PoolExhausted,
}

/// Why a treated unit got at least one but fewer than `k` controls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShortfallReason {
    /// The stratum has only this many controls, and the unit got them all.
    StratumTooSmall { controls: usize },
    /// Fewer than `k` controls of the stratum are within the caliper; the nearest control
    /// outside it is this far away.
    OutsideCaliper { next_distance: f64 },
    /// At least `k` controls are within the caliper, but earlier treated units took some
    /// (matching without replacement).
    PoolExhausted,
}

/// A treated unit with no match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unmatched {
    /// The treated unit's caller index.
    pub treated: usize,
    /// Why it got no control.
    pub reason: UnmatchedReason,
}

/// A treated unit matched to fewer than `k` controls (but at least one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Partial {
    /// The treated unit's caller index.
    pub treated: usize,
    /// How many controls it got (1 ..= k − 1).
    pub matched: usize,
    /// Why it got no more.
    pub reason: ShortfallReason,
}

/// The result of [`match_nearest`], in canonical order (see the module docs, rule 9).
#[derive(Debug, Clone, PartialEq)]
pub struct Matching {
    /// Every treated–control link, sorted by (treated index, rank).
    pub pairs: Vec<Pair>,
    /// Treated units with no control, sorted by treated index.
    pub unmatched: Vec<Unmatched>,
    /// Every control that serves at least one treated unit with its total weight, sorted
    /// by pool index.
    pub control_weights: Vec<(usize, Weight)>,
    /// Treated units with fewer than `k` controls but at least one, sorted by treated index.
    pub partial: Vec<Partial>,
    /// `L = lcm(1..=k)`: every [`Weight`] is a numerator over it.
    pub weight_denominator: u64,
}

/// Which input a unit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Treated,
    Pool,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Treated => "treated",
            Side::Pool => "pool",
        })
    }
}

/// Why matching cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatchError {
    #[error("the matching ratio k is 0: each treated unit needs at least one control, so k must be 1 or more")]
    ZeroRatio,
    #[error("the matching ratio k is {ratio}, above the supported maximum of {MAX_RATIO}")]
    RatioTooLarge { ratio: usize },
    #[error("the caliper is {caliper}: it must be a finite logit distance of 0 or more (leave it out for no caliper)")]
    InvalidCaliper { caliper: f64 },
    #[error(
        "{side} unit with index {index} (id {id:?}) has logit {logit}, and {count} {side} unit(s) in all have a logit that is not a finite number: \
         check the propensity model (a score of exactly 0 or 1 has no finite logit)"
    )]
    NonFiniteLogit {
        side: Side,
        index: usize,
        id: String,
        logit: f64,
        count: usize,
    },
    #[error("{side} index {index} is used by more than one unit: each unit needs its own index")]
    DuplicateIndex { side: Side, index: usize },
    #[error("the total weight of pool unit {index} does not fit in 64 bits")]
    WeightOverflow { index: usize },
}

/// `L = lcm(1, 2, …, k)`, the common denominator of all weights when matching 1:k, for
/// `1 ≤ k ≤` [`MAX_RATIO`]; `None` for `k = 0` or `k > MAX_RATIO`. `L(3) = 6`,
/// `L(10) = 2520`.
pub fn weight_denominator(k: usize) -> Option<u64> {
    if k == 0 || k > MAX_RATIO {
        return None;
    }
    let mut l: u64 = 1;
    for i in 2..=k as u64 {
        l = l.checked_mul(i / gcd(l, i))?;
    }
    Some(l)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Reads `-0.0` as `0.0` so that sorting by value and comparing with `==` agree.
fn clean(logit: f64) -> f64 {
    logit + 0.0
}

/// Matches each treated unit to up to `k` nearest controls from `pool`, by the rules in
/// the module docs.
pub fn match_nearest(
    treated: &[Unit],
    pool: &[Unit],
    opts: &MatchOptions,
) -> Result<Matching, MatchError> {
    let k = opts.ratio;
    if k == 0 {
        return Err(MatchError::ZeroRatio);
    }
    let denominator = weight_denominator(k).ok_or(MatchError::RatioTooLarge { ratio: k })?;
    if let Some(c) = opts.caliper {
        if !(c.is_finite() && c >= 0.0) {
            return Err(MatchError::InvalidCaliper { caliper: c });
        }
    }
    check_logits(Side::Treated, treated)?;
    check_logits(Side::Pool, pool)?;
    check_indices(Side::Treated, treated)?;
    check_indices(Side::Pool, pool)?;

    // Only strata that hold a treated unit matter; number them in byte order. The hash map
    // is only looked up, never iterated, so its order cannot leak into the result.
    let names: BTreeSet<&str> = treated.iter().map(|u| u.stratum).collect();
    let number: HashMap<&str, usize> = names.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let mut members: Vec<Vec<Member>> = vec![Vec::new(); names.len()];
    for (pos, u) in pool.iter().enumerate() {
        if let Some(list) = number.get(u.stratum).and_then(|&s| members.get_mut(s)) {
            list.push(Member {
                logit: clean(u.logit),
                id_prefix: id_prefix(u.id),
                pos,
            });
        }
    }
    let mut strata: Vec<Stratum> = members
        .into_iter()
        .map(|m| Stratum::new(pool, m, !opts.replacement))
        .collect();

    let mut order: Vec<&Unit> = treated.iter().collect();
    if !opts.replacement {
        order.sort_unstable_by(|a, b| {
            clean(b.logit)
                .total_cmp(&clean(a.logit))
                .then_with(|| a.id.cmp(b.id))
                .then_with(|| a.index.cmp(&b.index))
        });
    }

    let mut pairs = Vec::new();
    let mut unmatched = Vec::new();
    let mut partial = Vec::new();
    let mut weights: BTreeMap<usize, u64> = BTreeMap::new();
    for t in order {
        let logit = clean(t.logit);
        let Some(stratum) = number.get(t.stratum).and_then(|&s| strata.get_mut(s)) else {
            // Unreachable: every treated stratum was numbered above.
            unmatched.push(Unmatched {
                treated: t.index,
                reason: UnmatchedReason::NoControlInStratum,
            });
            continue;
        };
        let picks = stratum.select(logit, k, opts.caliper);
        let m = picks.len();
        if m > 0 {
            let share = denominator / m as u64;
            for (rank, &(slot, distance)) in picks.iter().enumerate() {
                stratum.take(slot);
                let control = stratum.unit(slot).index;
                pairs.push(Pair {
                    treated: t.index,
                    control,
                    rank: rank + 1,
                    distance,
                });
                let w = weights.entry(control).or_insert(0);
                *w = w
                    .checked_add(share)
                    .ok_or(MatchError::WeightOverflow { index: control })?;
            }
        }
        if m < k {
            match (m, stratum.shortfall(logit, k, opts.caliper, m)) {
                (0, Short::Exhausted) => unmatched.push(Unmatched {
                    treated: t.index,
                    reason: UnmatchedReason::PoolExhausted,
                }),
                (0, Short::Caliper(d)) => unmatched.push(Unmatched {
                    treated: t.index,
                    reason: UnmatchedReason::OutsideCaliper {
                        nearest_distance: d,
                    },
                }),
                (0, Short::TooSmall(_)) => unmatched.push(Unmatched {
                    treated: t.index,
                    reason: UnmatchedReason::NoControlInStratum,
                }),
                (matched, short) => partial.push(Partial {
                    treated: t.index,
                    matched,
                    reason: match short {
                        Short::Exhausted => ShortfallReason::PoolExhausted,
                        Short::Caliper(d) => ShortfallReason::OutsideCaliper { next_distance: d },
                        Short::TooSmall(n) => ShortfallReason::StratumTooSmall { controls: n },
                    },
                }),
            }
        }
    }

    pairs.sort_unstable_by_key(|p| (p.treated, p.rank));
    unmatched.sort_unstable_by_key(|u| u.treated);
    partial.sort_unstable_by_key(|p| p.treated);
    Ok(Matching {
        pairs,
        unmatched,
        control_weights: weights.into_iter().map(|(i, w)| (i, Weight(w))).collect(),
        partial,
        weight_denominator: denominator,
    })
}

/// Rejects non-finite logits, naming the offender with the lowest index.
fn check_logits(side: Side, units: &[Unit]) -> Result<(), MatchError> {
    let bad = || units.iter().filter(|u| !u.logit.is_finite());
    match bad().min_by_key(|u| u.index) {
        None => Ok(()),
        Some(u) => Err(MatchError::NonFiniteLogit {
            side,
            index: u.index,
            id: u.id.to_string(),
            logit: u.logit,
            count: bad().count(),
        }),
    }
}

/// Rejects an index used twice on one side, naming the lowest such index.
fn check_indices(side: Side, units: &[Unit]) -> Result<(), MatchError> {
    let mut indices: Vec<usize> = units.iter().map(|u| u.index).collect();
    indices.sort_unstable();
    match indices.windows(2).find(|w| w[0] == w[1]) {
        None => Ok(()),
        Some(w) => Err(MatchError::DuplicateIndex { side, index: w[0] }),
    }
}

/// Why a treated unit got fewer than `k` (rule 6), before naming it for the caller.
enum Short {
    Exhausted,
    Caliper(f64),
    TooSmall(usize),
}

/// A pool unit waiting to be sorted into its stratum.
#[derive(Clone, Copy)]
struct Member {
    logit: f64,
    id_prefix: u64,
    pos: usize,
}

/// The first 8 bytes of `id`, zero-padded, as a big-endian number: when two prefixes
/// differ they order the ids as byte order does, so most id comparisons in the pool sort
/// never leave the array being sorted. Equal prefixes fall back to the full id.
fn id_prefix(id: &str) -> u64 {
    let mut bytes = [0u8; 8];
    for (b, s) in bytes.iter_mut().zip(id.bytes()) {
        *b = s;
    }
    u64::from_be_bytes(bytes)
}

/// One stratum's controls, sorted by (logit, id, index); "slots" are positions in that
/// order.
struct Stratum<'a> {
    pool: &'a [Unit<'a>],
    logit: Vec<f64>,
    pos: Vec<usize>,
    taken: Option<Taken>,
}

/// Union-find links over slots for matching without replacement. `next` has `n + 1`
/// entries and leads from slot `i` to the first free slot `≥ i` (`n` means none); `prev`
/// is shifted by one and leads from entry `e` to `1 +` the last free slot `< e` (`0`
/// means none). Each entry points to itself or further along, so `find` ends.
struct Taken {
    next: Vec<usize>,
    prev: Vec<usize>,
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while let Some(&p) = parent.get(x) {
        if p == x {
            break;
        }
        let grand = parent.get(p).copied().unwrap_or(p);
        if let Some(slot) = parent.get_mut(x) {
            *slot = grand;
        }
        x = grand;
    }
    x
}

impl<'a> Stratum<'a> {
    fn new(pool: &'a [Unit<'a>], mut members: Vec<Member>, without_replacement: bool) -> Self {
        members.sort_unstable_by(|a, b| {
            a.logit
                .total_cmp(&b.logit)
                .then(a.id_prefix.cmp(&b.id_prefix))
                .then_with(|| {
                    let (ua, ub) = (&pool[a.pos], &pool[b.pos]);
                    ua.id.cmp(ub.id).then_with(|| ua.index.cmp(&ub.index))
                })
        });
        let n = members.len();
        let (logit, pos) = members.into_iter().map(|m| (m.logit, m.pos)).unzip();
        let taken = without_replacement.then(|| Taken {
            next: (0..=n).collect(),
            prev: (0..=n).collect(),
        });
        Stratum {
            pool,
            logit,
            pos,
            taken,
        }
    }

    fn len(&self) -> usize {
        self.logit.len()
    }

    fn unit(&self, slot: usize) -> &'a Unit<'a> {
        &self.pool[self.pos[slot]]
    }

    fn dist(&self, t: f64, slot: usize) -> f64 {
        (t - self.logit[slot]).abs()
    }

    /// The tie-break among equal distances: id in byte order, then index.
    fn tie_cmp(&self, a: usize, b: usize) -> Ordering {
        let (ua, ub) = (self.unit(a), self.unit(b));
        ua.id.cmp(ub.id).then_with(|| ua.index.cmp(&ub.index))
    }

    /// The first free slot `≥ from`.
    fn next_free(&mut self, from: usize) -> Option<usize> {
        let n = self.len();
        if from >= n {
            return None;
        }
        let slot = match &mut self.taken {
            None => from,
            Some(t) => find(&mut t.next, from),
        };
        (slot < n).then_some(slot)
    }

    /// The last free slot `< end`.
    fn prev_free(&mut self, end: usize) -> Option<usize> {
        let end = end.min(self.len());
        match &mut self.taken {
            None => end.checked_sub(1),
            Some(t) => find(&mut t.prev, end).checked_sub(1),
        }
    }

    fn take(&mut self, slot: usize) {
        if let Some(t) = &mut self.taken {
            if let Some(e) = t.next.get_mut(slot) {
                *e = slot + 1;
            }
            if let Some(e) = t.prev.get_mut(slot + 1) {
                *e = slot;
            }
        }
    }

    /// Up to `need` free slots of `a..b`, in (id, index) order. All slots in the range
    /// are at one distance from the treated unit.
    fn run(&mut self, a: usize, b: usize, need: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let single_logit = match (
            self.logit.get(a),
            b.checked_sub(1).and_then(|l| self.logit.get(l)),
        ) {
            (Some(first), Some(last)) => first == last,
            _ => return out,
        };
        let mut from = a;
        while let Some(slot) = self.next_free(from).filter(|&s| s < b) {
            out.push(slot);
            // One logit: slots are already in (id, index) order, so stop at `need`.
            if single_logit && out.len() == need {
                break;
            }
            from = slot + 1;
        }
        if !single_logit {
            // Distinct logits rounding to one distance: rare, sort them.
            out.sort_unstable_by(|&x, &y| self.tie_cmp(x, y));
            out.truncate(need);
        }
        out
    }

    /// Up to `k` free eligible slots for a treated unit at `t`, nearest first in the
    /// total order, each with its distance. Takes nothing.
    fn select(&mut self, t: f64, k: usize, caliper: Option<f64>) -> Vec<(usize, f64)> {
        let p = self.logit.partition_point(|&c| c < t);
        // Slots below `left_end` (logit < t) and from `right_start` on (logit ≥ t) are
        // still to visit; distance never decreases going outward on either side.
        let (mut left_end, mut right_start) = (p, p);
        let mut picks = Vec::with_capacity(k);
        while picks.len() < k {
            let l = self.prev_free(left_end);
            let r = self.next_free(right_start);
            let dl = l.map(|s| self.dist(t, s));
            let dr = r.map(|s| self.dist(t, s));
            let d = match (dl, dr) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if caliper.is_some_and(|c| d > c) {
                break;
            }
            let need = k - picks.len();
            let mut next = Vec::new();
            let mut sides = 0;
            if let Some(r) = r.filter(|_| dr == Some(d)) {
                let end = r + self.logit[r..].partition_point(|&c| (t - c).abs() <= d);
                next.extend(self.run(r, end, need));
                right_start = end;
                sides += 1;
            }
            if let Some(l) = l.filter(|_| dl == Some(d)) {
                let start = self.logit[..=l].partition_point(|&c| (t - c).abs() > d);
                next.extend(self.run(start, l + 1, need));
                left_end = start;
                sides += 1;
            }
            if sides == 2 {
                next.sort_unstable_by(|&x, &y| self.tie_cmp(x, y));
            }
            if next.is_empty() {
                // Cannot happen (slot `l` or `r` is in a run); never loop without progress.
                break;
            }
            next.truncate(need);
            picks.extend(next.into_iter().map(|s| (s, d)));
        }
        picks
    }

    /// Rule 6 for a treated unit at `t` that got `m < k` controls.
    fn shortfall(&self, t: f64, k: usize, caliper: Option<f64>, m: usize) -> Short {
        let n = self.len();
        let (within, outside) = match caliper {
            None => (n, None),
            Some(c) => {
                let p = self.logit.partition_point(|&x| x < t);
                let right = self.logit[p..].partition_point(|&x| (t - x).abs() <= c);
                let start = self.logit[..p].partition_point(|&x| (t - x).abs() > c);
                let left_out = start.checked_sub(1).map(|s| self.dist(t, s));
                let right_out = self.logit.get(p + right).map(|&x| (t - x).abs());
                let outside = match (left_out, right_out) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (right + (p - start), outside)
            }
        };
        if m < k.min(within) {
            Short::Exhausted
        } else {
            match outside {
                Some(d) => Short::Caliper(d),
                None => Short::TooSmall(n),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit<'a>(index: usize, id: &'a str, logit: f64, stratum: &'a str) -> Unit<'a> {
        Unit {
            index,
            id,
            logit,
            stratum,
        }
    }

    fn opts(ratio: usize, caliper: Option<f64>, replacement: bool) -> MatchOptions {
        MatchOptions {
            ratio,
            caliper,
            replacement,
        }
    }

    fn pair(treated: usize, control: usize, rank: usize, distance: f64) -> Pair {
        Pair {
            treated,
            control,
            rank,
            distance,
        }
    }

    fn weights(list: &[(usize, u64)]) -> Vec<(usize, Weight)> {
        list.iter().map(|&(i, w)| (i, Weight(w))).collect()
    }

    // ---- the worked example ------------------------------------------------------------

    /// Ten controls in stratum "A" plus one in "C". All logits are multiples of 1/8, so
    /// every distance below is exact.
    fn example_pool() -> Vec<Unit<'static>> {
        vec![
            unit(0, "P-90", -3.0, "A"),
            unit(1, "P-91", -2.0, "A"),
            unit(2, "P-92", -1.0, "A"),
            unit(3, "P-93", -0.5, "A"),
            unit(4, "P-94", 0.0, "A"),
            unit(5, "P-50", 1.0, "A"),  // X
            unit(6, "P-20", 1.25, "A"), // Y: smaller id than X
            unit(7, "P-97", 2.0, "A"),
            unit(8, "P-98", 3.0, "A"),
            unit(9, "P-99", 0.5, "A"),
            unit(10, "P-10", 4.0, "C"), // would be perfect for t2, but another stratum
        ]
    }

    fn example_treated() -> Vec<Unit<'static>> {
        vec![
            unit(0, "T-0", 1.125, "A"),
            unit(1, "T-1", 1.375, "A"),
            unit(2, "T-2", 4.0, "A"),
            unit(3, "T-3", -0.375, "A"),
            unit(4, "T-4", 0.625, "A"),
            unit(5, "T-5", 0.0, "B"),
        ]
    }

    // By hand, k = 1, caliper 0.5.
    // t0 (1.125): X (1.0) and Y (1.25) are both 0.125 away: a tie. Y's id "P-20" sorts
    //   before X's "P-50", so Y wins, although X has the lower logit and the lower index.
    // t1 (1.375): Y is 0.125 away, X 0.375, control 7 (2.0) 0.625 → Y.
    // t2 (4.0): nearest control in "A" is 8 (3.0), 1.0 away > 0.5 → OutsideCaliper(1.0).
    //   Control 10 is at distance 0 but in stratum "C".
    // t3 (-0.375): control 3 (-0.5) 0.125, control 4 (0.0) 0.375 → 3.
    // t4 (0.625): control 9 (0.5) 0.125, X 0.375 → 9.
    // t5: stratum "B" has no control → NoControlInStratum.
    #[test]
    fn worked_example_with_replacement_reuses_a_control_and_breaks_ties_by_id() {
        let m = match_nearest(
            &example_treated(),
            &example_pool(),
            &opts(1, Some(0.5), true),
        )
        .unwrap();
        assert_eq!(
            m.pairs,
            vec![
                pair(0, 6, 1, 0.125),
                pair(1, 6, 1, 0.125),
                pair(3, 3, 1, 0.125),
                pair(4, 9, 1, 0.125),
            ]
        );
        assert_eq!(
            m.unmatched,
            vec![
                Unmatched {
                    treated: 2,
                    reason: UnmatchedReason::OutsideCaliper {
                        nearest_distance: 1.0
                    }
                },
                Unmatched {
                    treated: 5,
                    reason: UnmatchedReason::NoControlInStratum
                },
            ]
        );
        assert!(m.partial.is_empty());
        // L = 1 for k = 1; Y serves t0 and t1: 1/1 + 1/1 = 2.
        assert_eq!(m.weight_denominator, 1);
        assert_eq!(m.control_weights, weights(&[(3, 1), (6, 2), (9, 1)]));
    }

    // Without replacement the order is descending logit: t2 (4.0), t1 (1.375),
    // t0 (1.125), t4 (0.625), t5 (0.0, stratum "B"), t3 (-0.375).
    // t2: outside the caliper as before (no control is taken).
    // t1 takes Y (0.125). t0 then finds Y taken and takes X (also 0.125).
    // Had t0 gone first (input order), it would have taken Y by the id tie-break and t1
    // would have got X at 0.375: the processing order decides who gets Y.
    // t4 → 9, t5 → no control in "B", t3 → 3.
    #[test]
    fn worked_example_without_replacement_processes_hardest_first() {
        let m = match_nearest(
            &example_treated(),
            &example_pool(),
            &opts(1, Some(0.5), false),
        )
        .unwrap();
        assert_eq!(
            m.pairs,
            vec![
                pair(0, 5, 1, 0.125),
                pair(1, 6, 1, 0.125),
                pair(3, 3, 1, 0.125),
                pair(4, 9, 1, 0.125),
            ]
        );
        assert_eq!(m.unmatched.len(), 2);
        assert_eq!(
            m.control_weights,
            weights(&[(3, 1), (5, 1), (6, 1), (9, 1)])
        );
    }

    #[test]
    fn control_exactly_on_the_caliper_line_is_inside() {
        // t2 at 4.0, nearest control 1.0 away: a caliper of exactly 1.0 admits it.
        let m = match_nearest(
            &example_treated(),
            &example_pool(),
            &opts(1, Some(1.0), true),
        )
        .unwrap();
        assert!(m.pairs.contains(&pair(2, 8, 1, 1.0)));
        assert_eq!(m.unmatched.len(), 1);
    }

    // ---- 1:k -----------------------------------------------------------------------------

    fn k3_pool() -> Vec<Unit<'static>> {
        vec![
            unit(0, "a", -0.5, "S"),
            unit(1, "b", -0.25, "S"),
            unit(2, "c", 0.25, "S"),
            unit(3, "d", 0.75, "S"),
            unit(4, "e", 1.25, "S"),
            unit(5, "f", 1.5, "S"),
            unit(6, "g", 3.0, "S"),
        ]
    }

    // k = 3 with replacement, no caliper.
    // t0 (0.0): b 0.25, c 0.25 (tie, b < c), a 0.5 → b, c, a.
    // t1 (0.5): c 0.25, d 0.25 (tie, c < d), then b 0.75 and e 0.75 (tie, b < e) → c, d, b.
    // Weights over L = 6: a 2 (1/3), b 4 (2/3: serves both), c 4 (2/3), d 2 (1/3).
    #[test]
    fn one_to_three_gives_thirds_and_shared_controls_add_up() {
        let treated = vec![unit(0, "t0", 0.0, "S"), unit(1, "t1", 0.5, "S")];
        let m = match_nearest(&treated, &k3_pool(), &opts(3, None, true)).unwrap();
        assert_eq!(
            m.pairs,
            vec![
                pair(0, 1, 1, 0.25),
                pair(0, 2, 2, 0.25),
                pair(0, 0, 3, 0.5),
                pair(1, 2, 1, 0.25),
                pair(1, 3, 2, 0.25),
                pair(1, 1, 3, 0.75),
            ]
        );
        assert_eq!(m.weight_denominator, 6);
        assert_eq!(
            m.control_weights,
            weights(&[(0, 2), (1, 4), (2, 4), (3, 2)])
        );
        assert!(m.partial.is_empty() && m.unmatched.is_empty());
    }

    // k = 3, caliper 0.3: t0 (0.0) gets b and c (0.25), a at 0.5 is outside → partial,
    // 2 matched, next distance 0.5, weights 1/2 = 3/6 each.
    #[test]
    fn caliper_leaves_a_partial_match_with_half_weights() {
        let treated = vec![unit(0, "t0", 0.0, "S")];
        let m = match_nearest(&treated, &k3_pool(), &opts(3, Some(0.3), true)).unwrap();
        assert_eq!(m.pairs, vec![pair(0, 1, 1, 0.25), pair(0, 2, 2, 0.25)]);
        assert_eq!(
            m.partial,
            vec![Partial {
                treated: 0,
                matched: 2,
                reason: ShortfallReason::OutsideCaliper { next_distance: 0.5 }
            }]
        );
        assert_eq!(m.control_weights, weights(&[(1, 3), (2, 3)]));
    }

    #[test]
    fn weight_denominator_is_lcm_of_one_to_k() {
        assert_eq!(weight_denominator(1), Some(1));
        assert_eq!(weight_denominator(2), Some(2));
        assert_eq!(weight_denominator(3), Some(6));
        assert_eq!(weight_denominator(4), Some(12));
        assert_eq!(weight_denominator(10), Some(2520));
        assert_eq!(weight_denominator(20), Some(232_792_560));
        assert_eq!(weight_denominator(0), None);
        assert_eq!(weight_denominator(MAX_RATIO + 1), None);
    }

    // ---- strata --------------------------------------------------------------------------

    #[test]
    fn stratum_without_controls_leaves_unit_unmatched() {
        let treated = vec![
            unit(0, "t", 0.0, "2012Q1|male"),
            unit(1, "u", 0.0, "2012Q1|female"),
        ];
        let pool = vec![
            unit(0, "c", 5.0, "2012Q1|male"),
            unit(1, "d", 0.0, "2012Q2|female"),
        ];
        let m = match_nearest(&treated, &pool, &opts(1, None, true)).unwrap();
        assert_eq!(m.pairs, vec![pair(0, 0, 1, 5.0)]);
        assert_eq!(
            m.unmatched,
            vec![Unmatched {
                treated: 1,
                reason: UnmatchedReason::NoControlInStratum
            }]
        );
    }

    #[test]
    fn small_stratum_gives_a_partial_match() {
        let treated = vec![unit(0, "t", 0.0, "S")];
        let pool = vec![
            unit(7, "c", 1.0, "S"),
            unit(8, "d", -1.0, "S"),
            unit(9, "e", 0.0, "T"),
        ];
        let m = match_nearest(&treated, &pool, &opts(4, None, false)).unwrap();
        // d and c are both 1.0 away; "c" < "d".
        assert_eq!(m.pairs, vec![pair(0, 7, 1, 1.0), pair(0, 8, 2, 1.0)]);
        assert_eq!(
            m.partial,
            vec![Partial {
                treated: 0,
                matched: 2,
                reason: ShortfallReason::StratumTooSmall { controls: 2 }
            }]
        );
        // L(4) = 12; 1/2 each.
        assert_eq!(m.control_weights, weights(&[(7, 6), (8, 6)]));
    }

    #[test]
    fn taken_controls_give_pool_exhausted() {
        // Both at 0.0: t "a" goes first (id order), takes the only control.
        let treated = vec![unit(0, "b", 0.0, "S"), unit(1, "a", 0.0, "S")];
        let pool = vec![unit(0, "c", 0.1, "S"), unit(1, "d", 9.0, "S")];
        let m = match_nearest(&treated, &pool, &opts(1, Some(1.0), false)).unwrap();
        assert_eq!(m.pairs, vec![pair(1, 0, 1, 0.1)]);
        assert_eq!(
            m.unmatched,
            vec![Unmatched {
                treated: 0,
                reason: UnmatchedReason::PoolExhausted
            }]
        );
    }

    // ---- errors --------------------------------------------------------------------------

    #[test]
    fn bad_inputs_are_errors_naming_the_cause() {
        let ok = vec![unit(0, "t", 0.0, "S")];
        let pool = vec![unit(0, "c", 0.0, "S")];
        assert_eq!(
            match_nearest(&ok, &pool, &opts(0, None, true)),
            Err(MatchError::ZeroRatio)
        );
        assert_eq!(
            match_nearest(&ok, &pool, &opts(21, None, true)),
            Err(MatchError::RatioTooLarge { ratio: 21 })
        );
        assert!(matches!(
            match_nearest(&ok, &pool, &opts(1, Some(-0.1), true)),
            Err(MatchError::InvalidCaliper { .. })
        ));
        assert!(matches!(
            match_nearest(&ok, &pool, &opts(1, Some(f64::NAN), true)),
            Err(MatchError::InvalidCaliper { .. })
        ));
        let bad_pool = vec![
            unit(5, "x", f64::INFINITY, "S"),
            unit(3, "y", f64::NAN, "S"),
            unit(4, "z", 1.0, "S"),
        ];
        let err = match_nearest(&ok, &bad_pool, &opts(1, None, true)).unwrap_err();
        assert!(matches!(
            err,
            MatchError::NonFiniteLogit {
                side: Side::Pool,
                index: 3,
                count: 2,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "pool unit with index 3 (id \"y\") has logit NaN, and 2 pool unit(s) in all have a logit \
             that is not a finite number: check the propensity model (a score of exactly 0 or 1 has no finite logit)"
        );
        let dup = vec![unit(2, "t", 0.0, "S"), unit(2, "u", 1.0, "S")];
        assert_eq!(
            match_nearest(&dup, &pool, &opts(1, None, true)),
            Err(MatchError::DuplicateIndex {
                side: Side::Treated,
                index: 2
            })
        );
        assert_eq!(
            MatchError::ZeroRatio.to_string(),
            "the matching ratio k is 0: each treated unit needs at least one control, so k must be 1 or more"
        );
    }

    #[test]
    fn empty_inputs_match_nothing() {
        let m = match_nearest(&[], &[], &opts(2, None, false)).unwrap();
        assert!(m.pairs.is_empty() && m.unmatched.is_empty() && m.control_weights.is_empty());
        let m = match_nearest(&[unit(0, "t", 0.0, "S")], &[], &opts(2, Some(0.1), false)).unwrap();
        assert_eq!(
            m.unmatched,
            vec![Unmatched {
                treated: 0,
                reason: UnmatchedReason::NoControlInStratum
            }]
        );
    }

    // ---- random cases against a brute-force reference --------------------------------------

    /// SplitMix64 (Steele, Lea, Flood 2014), for test data only.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn unit_f64(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }

        fn shuffle<T>(&mut self, items: &mut [T]) {
            for i in (1..items.len()).rev() {
                items.swap(i, self.below(i + 1));
            }
        }
    }

    /// Logits that make ties likely: a coarse grid, signed zeros, continuous values, and
    /// huge values where distinct logits round to the same distance.
    fn random_logit(rng: &mut SplitMix64, huge: bool) -> f64 {
        if huge && rng.below(2) == 0 {
            return 9_007_199_254_740_992.0 + rng.below(5) as f64;
        }
        match rng.below(6) {
            0 => -0.0,
            1 | 2 => rng.below(17) as f64 / 4.0 - 2.0,
            3 => rng.below(9) as f64 / 2.0 + rng.unit_f64() * 1e-15,
            _ => rng.unit_f64() * 4.0 - 2.0,
        }
    }

    fn random_units(
        rng: &mut SplitMix64,
        n: usize,
        strata: usize,
        huge: bool,
    ) -> Vec<Unit<'static>> {
        const IDS: [&str; 10] = [
            "p1",
            "p10",
            "p2",
            "q",
            "Q",
            "p1",
            "é",
            "patient-0001",
            "patient-0002",
            "patient-",
        ];
        let mut indices: Vec<usize> = (0..n).map(|i| i * 3 + rng.below(3)).collect();
        rng.shuffle(&mut indices);
        indices
            .into_iter()
            .map(|index| Unit {
                index,
                id: IDS[rng.below(IDS.len())],
                logit: random_logit(rng, huge),
                stratum: ["s0", "s1", "s2"][rng.below(strata)],
            })
            .collect()
    }

    fn random_options(rng: &mut SplitMix64) -> MatchOptions {
        let caliper = match rng.below(4) {
            0 => None,
            1 => Some(rng.below(5) as f64 / 4.0),
            2 => Some(rng.unit_f64()),
            _ => Some(1.0 + rng.below(3) as f64),
        };
        opts(1 + rng.below(4), caliper, rng.below(2) == 0)
    }

    /// The rules read literally: O(T·N log N), no cleverness.
    fn brute_force(treated: &[Unit], pool: &[Unit], o: &MatchOptions) -> Matching {
        let k = o.ratio;
        let l = weight_denominator(k).unwrap();
        let within = |d: f64| o.caliper.is_none_or(|c| d <= c);
        let mut order: Vec<&Unit> = treated.iter().collect();
        if !o.replacement {
            order.sort_by(|a, b| {
                b.logit
                    .partial_cmp(&a.logit)
                    .unwrap()
                    .then(a.id.as_bytes().cmp(b.id.as_bytes()))
                    .then(a.index.cmp(&b.index))
            });
        }
        let mut used = vec![false; pool.len()];
        let mut m = Matching {
            pairs: vec![],
            unmatched: vec![],
            control_weights: vec![],
            partial: vec![],
            weight_denominator: l,
        };
        let mut w: BTreeMap<usize, u64> = BTreeMap::new();
        for t in order {
            let same: Vec<usize> = (0..pool.len())
                .filter(|&c| pool[c].stratum == t.stratum)
                .collect();
            let dist = |c: usize| (t.logit - pool[c].logit).abs();
            let inside = same.iter().filter(|&&c| within(dist(c))).count();
            let mut eligible: Vec<usize> = same
                .iter()
                .copied()
                .filter(|&c| !used[c] && within(dist(c)))
                .collect();
            eligible.sort_by(|&a, &b| {
                dist(a)
                    .partial_cmp(&dist(b))
                    .unwrap()
                    .then(pool[a].id.as_bytes().cmp(pool[b].id.as_bytes()))
                    .then(pool[a].index.cmp(&pool[b].index))
            });
            eligible.truncate(k);
            for (r, &c) in eligible.iter().enumerate() {
                if !o.replacement {
                    used[c] = true;
                }
                m.pairs.push(pair(t.index, pool[c].index, r + 1, dist(c)));
                *w.entry(pool[c].index).or_insert(0) += l / eligible.len() as u64;
            }
            let got = eligible.len();
            if got == k {
                continue;
            }
            let nearest_outside = same
                .iter()
                .map(|&c| dist(c))
                .filter(|&d| !within(d))
                .min_by(|a, b| a.partial_cmp(b).unwrap());
            if got == 0 {
                let reason = if same.is_empty() {
                    UnmatchedReason::NoControlInStratum
                } else if inside > 0 {
                    UnmatchedReason::PoolExhausted
                } else {
                    UnmatchedReason::OutsideCaliper {
                        nearest_distance: nearest_outside.unwrap(),
                    }
                };
                m.unmatched.push(Unmatched {
                    treated: t.index,
                    reason,
                });
            } else {
                let reason = if got < k.min(inside) {
                    ShortfallReason::PoolExhausted
                } else if let Some(d) = nearest_outside {
                    ShortfallReason::OutsideCaliper { next_distance: d }
                } else {
                    ShortfallReason::StratumTooSmall {
                        controls: same.len(),
                    }
                };
                m.partial.push(Partial {
                    treated: t.index,
                    matched: got,
                    reason,
                });
            }
        }
        m.pairs.sort_by_key(|p| (p.treated, p.rank));
        m.unmatched.sort_by_key(|u| u.treated);
        m.partial.sort_by_key(|p| p.treated);
        m.control_weights = w.into_iter().map(|(i, x)| (i, Weight(x))).collect();
        m
    }

    #[test]
    fn fast_matching_agrees_with_brute_force_on_random_cases() {
        let mut rng = SplitMix64(20_100_901);
        let mut seen = [0usize; 4];
        for case in 0..20_000 {
            let strata = 1 + rng.below(3);
            let huge = rng.below(8) == 0;
            let nt = rng.below(9);
            let np = rng.below(16);
            let treated = random_units(&mut rng, nt, strata, huge);
            let pool = random_units(&mut rng, np, strata, huge);
            let o = random_options(&mut rng);
            let fast = match_nearest(&treated, &pool, &o).unwrap();
            let slow = brute_force(&treated, &pool, &o);
            assert_eq!(fast, slow, "case {case}: {o:?}\n{treated:?}\n{pool:?}");
            let total: u64 = fast.control_weights.iter().map(|(_, w)| w.0).sum();
            let served = nt - fast.unmatched.len();
            assert_eq!(total, fast.weight_denominator * served as u64);
            seen[0] += fast.unmatched.len();
            seen[1] += fast.partial.len();
            seen[2] += fast.pairs.len();
            seen[3] += usize::from(
                fast.pairs
                    .windows(2)
                    .any(|w| w[0].distance == w[1].distance),
            );
        }
        // The generator really exercises every outcome.
        assert!(seen.iter().all(|&s| s > 1000), "{seen:?}");
    }

    #[test]
    fn shuffling_inputs_changes_nothing() {
        let mut rng = SplitMix64(42);
        for _ in 0..300 {
            let strata = 1 + rng.below(3);
            let huge = rng.below(8) == 0;
            let nt = rng.below(40);
            let np = rng.below(120);
            let mut treated = random_units(&mut rng, nt, strata, huge);
            let mut pool = random_units(&mut rng, np, strata, huge);
            let o = random_options(&mut rng);
            let before = match_nearest(&treated, &pool, &o).unwrap();
            rng.shuffle(&mut treated);
            rng.shuffle(&mut pool);
            assert_eq!(match_nearest(&treated, &pool, &o).unwrap(), before);
        }
    }

    // ---- timing --------------------------------------------------------------------------

    fn national<'a>(
        rng: &mut SplitMix64,
        ids: &'a [String],
        shift: f64,
        distinct: Option<usize>,
        strata: usize,
    ) -> Vec<Unit<'a>> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                // Roughly normal: sum of four uniforms.
                let z: f64 = (0..4).map(|_| rng.unit_f64()).sum::<f64>() - 2.0;
                let logit = match distinct {
                    Some(levels) => (((z + 2.0) / 4.0 * levels as f64).floor()) / 10.0 + shift,
                    None => z * 1.7 + shift,
                };
                Unit {
                    index: i,
                    id,
                    logit,
                    stratum: ["2010|cohort1", "2011|cohort2", "2012|cohort3"][rng.below(strata)],
                }
            })
            .collect()
    }

    /// `cargo test --release -- --ignored --nocapture timing`
    #[test]
    #[ignore = "timing: run in release with --ignored --nocapture"]
    fn timing_3000_treated_against_a_million() {
        let mut rng = SplitMix64(7);
        let ids = |first: usize, n: usize| -> Vec<String> {
            (first..first + n).map(|i| format!("P{i:08}")).collect()
        };
        let (pool_ids, treated_ids) = (ids(0, 1_000_000), ids(5_000_000, 3000));
        for (distinct, strata) in [(None, 1), (None, 3), (Some(60), 1), (Some(60), 3)] {
            let pool = national(&mut rng, &pool_ids, 0.0, distinct, strata);
            let treated = national(&mut rng, &treated_ids, 0.6, distinct, strata);
            for (k, replacement) in [(1, true), (1, false), (3, true), (5, false)] {
                // Caliper 0.2 SD of the pool's logit (SD ≈ 1.7 × 0.577 ≈ 0.98).
                let o = opts(k, Some(0.2 * 0.98), replacement);
                let start = std::time::Instant::now();
                let m = match_nearest(&treated, &pool, &o).unwrap();
                println!(
                    "{strata} strata, logits {}: k={k} replacement={replacement}: {:?}, {} pairs, {} partial, {} unmatched",
                    if distinct.is_some() { "in 60 levels" } else { "continuous" },
                    start.elapsed(),
                    m.pairs.len(),
                    m.partial.len(),
                    m.unmatched.len()
                );
            }
        }
    }
}
