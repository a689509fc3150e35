//! Exact arithmetic for everything a decision or a payment depends on.
//!
//! Rates are ratios of integer counts, published baselines and thresholds are decimal
//! strings, and money is integer minor units. Floats would make two honest runs disagree
//! in the last digit and let a comparison at a threshold go either way, so every figure
//! that reaches a decision is a [`Ratio`] of two `i128`s, compared by cross
//! multiplication and written out as a fixed-precision decimal string.

use std::cmp::Ordering;
use std::fmt;

/// An exact, normalised fraction `num / den` with `den > 0` and `gcd(num, den) = 1`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ratio {
    num: i128,
    den: i128,
}

/// Why a string is not a plain decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a decimal number: write digits with an optional sign and decimal point, e.g. \"0.05\"")]
pub struct ParseDecimalError(pub String);

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl Ratio {
    /// Zero.
    pub const ZERO: Ratio = Ratio { num: 0, den: 1 };

    /// `num / den`, normalised. Returns `None` when `den` is zero.
    pub fn new(num: i128, den: i128) -> Option<Ratio> {
        if den == 0 {
            return None;
        }
        let (mut num, mut den) = if den < 0 { (-num, -den) } else { (num, den) };
        let g = gcd(num, den);
        if g > 1 {
            num /= g;
            den /= g;
        }
        Some(Ratio { num, den })
    }

    /// A whole number.
    pub fn from_int(n: i128) -> Ratio {
        Ratio { num: n, den: 1 }
    }

    /// Numerator of the normalised fraction.
    pub fn numer(&self) -> i128 {
        self.num
    }

    /// Denominator of the normalised fraction (always positive).
    pub fn denom(&self) -> i128 {
        self.den
    }

    /// Parses a plain decimal such as `"0.580"`, `"-3"`, `"12.5"`. No exponents, no
    /// thousands separators, at most 18 digits.
    pub fn parse_decimal(s: &str) -> Result<Ratio, ParseDecimalError> {
        let err = || ParseDecimalError(s.to_string());
        let t = s.trim();
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty())
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
            || int_part.len() + frac_part.len() > 18
        {
            return Err(err());
        }
        let mut num: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            num = num * 10 + i128::from(b - b'0');
        }
        let den = 10i128.pow(frac_part.len() as u32);
        Ratio::new(if neg { -num } else { num }, den).ok_or_else(err)
    }

    /// `self + other`.
    pub fn plus(self, other: Ratio) -> Ratio {
        let g = gcd(self.den, other.den);
        let den = self.den / g * other.den;
        let num = self.num * (den / self.den) + other.num * (den / other.den);
        Ratio::new(num, den).unwrap_or(Ratio::ZERO)
    }

    /// `self - other`.
    pub fn minus(self, other: Ratio) -> Ratio {
        self.plus(Ratio {
            num: -other.num,
            den: other.den,
        })
    }

    /// `self * other`.
    pub fn times(self, other: Ratio) -> Ratio {
        let g1 = gcd(self.num, other.den).max(1);
        let g2 = gcd(other.num, self.den).max(1);
        Ratio::new(
            (self.num / g1) * (other.num / g2),
            (self.den / g2) * (other.den / g1),
        )
        .unwrap_or(Ratio::ZERO)
    }

    /// `self / other`, or `None` when `other` is zero.
    pub fn checked_div(self, other: Ratio) -> Option<Ratio> {
        if other.num == 0 {
            return None;
        }
        Some(self.times(Ratio {
            num: other.den,
            den: other.num,
        }))
        .and_then(|r| Ratio::new(r.num, r.den))
    }

    /// The absolute value.
    pub fn abs_value(self) -> Ratio {
        Ratio {
            num: self.num.abs(),
            den: self.den,
        }
    }

    /// True when the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.num < 0
    }

    /// Rounds toward zero to an integer.
    pub fn trunc(&self) -> i128 {
        self.num / self.den
    }

    /// The value as a decimal string with exactly `places` digits after the point,
    /// rounded half away from zero. `Ratio::new(2, 3)` with 4 places is `"0.6667"`.
    pub fn to_fixed(&self, places: u32) -> String {
        let scale = 10i128.pow(places);
        let neg = self.num < 0;
        let abs = self.num.abs();
        let scaled = abs * scale;
        let mut q = scaled / self.den;
        let r = scaled % self.den;
        if r * 2 >= self.den {
            q += 1;
        }
        let int = q / scale;
        let frac = q % scale;
        let sign = if neg && q != 0 { "-" } else { "" };
        if places == 0 {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac:0width$}", width = places as usize)
        }
    }

    /// Lossy conversion for charts and statistics; never used for decisions.
    pub fn to_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

impl Ord for Ratio {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.num * other.den).cmp(&(other.num * self.den))
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

impl fmt::Debug for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ratio({self})")
    }
}

/// Formats integer minor units (pence, cents) as a decimal amount with two places,
/// e.g. `100_000_000` → `"1000000.00"`.
pub fn minor_to_decimal(minor: i128) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Ratio {
        Ratio::new(n, d).unwrap()
    }

    #[test]
    fn parses_published_decimals_exactly() {
        assert_eq!(Ratio::parse_decimal("0.580").unwrap(), r(29, 50));
        assert_eq!(Ratio::parse_decimal("-3").unwrap(), r(-3, 1));
        assert_eq!(Ratio::parse_decimal(".5").unwrap(), r(1, 2));
        assert_eq!(Ratio::parse_decimal("12.").unwrap(), r(12, 1));
        for bad in ["", ".", "1e3", "0,5", "abc", "1.2.3", "- 1", "NaN", "inf"] {
            assert!(Ratio::parse_decimal(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(r(1, 3).plus(r(1, 6)), r(1, 2));
        assert_eq!(r(580, 1000).minus(r(523, 1000)), r(57, 1000));
        assert_eq!(r(2, 3).times(r(9, 4)), r(3, 2));
        assert_eq!(r(1, 2).checked_div(r(1, 4)), Some(r(2, 1)));
        assert_eq!(r(1, 2).checked_div(Ratio::ZERO), None);
        assert!(r(57, 1000) > r(5, 100));
        assert!(r(33, 1000) < r(5, 100));
        assert_eq!(
            r(1, 20).cmp(&Ratio::parse_decimal("0.05").unwrap()),
            Ordering::Equal
        );
        assert_eq!(Ratio::new(3, -6).unwrap(), r(-1, 2));
        assert_eq!(Ratio::new(1, 0), None);
    }

    #[test]
    fn fixed_decimal_rounds_half_away_from_zero() {
        assert_eq!(r(2, 3).to_fixed(4), "0.6667");
        assert_eq!(r(1, 8).to_fixed(2), "0.13");
        assert_eq!(r(-1, 8).to_fixed(2), "-0.13");
        assert_eq!(r(523, 1000).to_fixed(6), "0.523000");
        assert_eq!(r(-1, 1000).to_fixed(2), "0.00");
        assert_eq!(r(7, 2).to_fixed(0), "4");
        assert_eq!(r(142, 1).to_fixed(1), "142.0");
    }

    #[test]
    fn money_formats_with_two_places() {
        assert_eq!(minor_to_decimal(100_000_000), "1000000.00");
        assert_eq!(minor_to_decimal(-5), "-0.05");
        assert_eq!(minor_to_decimal(0), "0.00");
    }
}
