//! Calendar dates and the month arithmetic that follow-up windows are counted in.
//!
//! Audits disagree most often on date arithmetic, so the rules live here, in one place:
//! a date is a day count since 1970-01-01 (`i32`, the same encoding polars uses), and
//! "N calendar months after D" is the same day-of-month N months later, clamped to the
//! last day of that month when it has fewer days (31 January + 1 month = 28 or 29
//! February; 29 February 2012 + 12 months = 28 February 2013).

use chrono::{Datelike, Months, NaiveDate};

/// Days since 1970-01-01.
pub type Day = i32;

const EPOCH_CE_DAYS: i32 = 719_163; // NaiveDate::from_ymd(1970, 1, 1).num_days_from_ce()

/// Earliest and latest dates accepted in data and specs. Anything outside is almost
/// certainly a typing error (a year of 0201 or 2202) and is rejected.
pub const MIN_YEAR: i32 = 1900;
/// Day number standing for a missing date (never a real date: years are limited to
/// [`MIN_YEAR`]..=[`MAX_YEAR`]).
pub const MISSING: Day = Day::MIN;
pub const MAX_YEAR: i32 = 2200;

/// Converts a chrono date to a day number.
pub fn to_day(date: NaiveDate) -> Day {
    date.num_days_from_ce() - EPOCH_CE_DAYS
}

/// Converts a day number back to a date.
pub fn from_day(day: Day) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day + EPOCH_CE_DAYS).unwrap_or(NaiveDate::MIN)
}

/// Formats a day number as `YYYY-MM-DD`.
pub fn format_day(day: Day) -> String {
    from_day(day).format("%Y-%m-%d").to_string()
}

/// Year, month and day of a day number (proleptic Gregorian), without chrono: the
/// "days from civil" inverse of H. Hinnant's algorithms, used to write millions of dates.
pub fn civil(day: Day) -> (i32, u32, u32) {
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// 1 January of [`MIN_YEAR`] and 31 December of [`MAX_YEAR`]: the accepted days.
fn accepted_days() -> std::ops::RangeInclusive<Day> {
    days_from_civil(i64::from(MIN_YEAR), 1, 1)..=days_from_civil(i64::from(MAX_YEAR), 12, 31)
}

/// `YYYY-MM-DD` of every accepted day ([`accepted_days`]), from the first: about
/// 110,000 dates (1.1 MB), made once, so that the millions of dates in the evidence
/// tables are copied rather than computed.
fn formatted_days() -> &'static [[u8; 10]] {
    static DAYS: std::sync::OnceLock<Vec<[u8; 10]>> = std::sync::OnceLock::new();
    DAYS.get_or_init(|| accepted_days().map(compute_day_text).collect())
}

/// Appends `YYYY-MM-DD` to a buffer (years 0 to 9999).
pub fn push_day(out: &mut Vec<u8>, day: Day) {
    let table = formatted_days();
    // Days outside the table are computed.
    match usize::try_from(i64::from(day) - i64::from(*accepted_days().start()))
        .ok()
        .and_then(|i| table.get(i))
    {
        Some(text) => out.extend_from_slice(text),
        None => out.extend_from_slice(&compute_day_text(day)),
    }
}

/// `YYYY-MM-DD` of a day number (years 0 to 9999), computed.
fn compute_day_text(day: Day) -> [u8; 10] {
    let (y, m, d) = civil(day);
    let y = y.clamp(0, 9999) as u32;
    [
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b'-',
        b'0' + (m / 10) as u8,
        b'0' + (m % 10) as u8,
        b'-',
        b'0' + (d / 10) as u8,
        b'0' + (d % 10) as u8,
    ]
}

/// Parses an ISO date `YYYY-MM-DD` (exactly ten characters) within the accepted years.
pub fn parse_iso(s: &str) -> Option<Day> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let y = y as i32;
    if !(MIN_YEAR..=MAX_YEAR).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    if d == 0 || d > days_in_month(i64::from(y), m) {
        return None;
    }
    Some(days_from_civil(i64::from(y), m, d))
}

/// Parses a date with a chrono format string such as `%d/%m/%Y`; ISO is parsed by the
/// fast path above.
pub fn parse_with_format(s: &str, format: &str) -> Option<Day> {
    if format == "%Y-%m-%d" {
        return parse_iso(s);
    }
    let date = NaiveDate::parse_from_str(s, format).ok()?;
    if !(MIN_YEAR..=MAX_YEAR).contains(&date.year()) {
        return None;
    }
    Some(to_day(date))
}

/// The day `months` calendar months after `day`, clamped to the month's last day.
/// Computed directly for days of the accepted years and up to a thousand years on (a
/// million people's windows are counted with it), else with chrono; the two agree on
/// every day of the accepted years (tested).
pub fn add_months(day: Day, months: u32) -> Day {
    if accepted_days().contains(&day) && months <= 12_000 {
        let (y, m, d) = civil(day);
        let total = i64::from(y) * 12 + i64::from(m) - 1 + i64::from(months);
        let (year, month) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
        return days_from_civil(year, month, d.min(days_in_month(year, month)));
    }
    add_months_chrono(day, months)
}

/// [`add_months`] by chrono, for any day.
fn add_months_chrono(day: Day, months: u32) -> Day {
    from_day(day)
        .checked_add_months(Months::new(months))
        .map(to_day)
        .unwrap_or(Day::MAX)
}

/// Days in a month of the proleptic Gregorian calendar.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The day number of a date: H. Hinnant's "days from civil", the inverse of [`civil`].
fn days_from_civil(year: i64, month: u32, day: u32) -> Day {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as Day
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Day {
        parse_iso(s).unwrap()
    }

    #[test]
    fn day_numbers_match_the_unix_epoch() {
        assert_eq!(d("1970-01-01"), 0);
        assert_eq!(d("1970-01-02"), 1);
        assert_eq!(d("1969-12-31"), -1);
        assert_eq!(format_day(d("2012-02-29")), "2012-02-29");
    }

    #[test]
    fn fast_formatting_matches_chrono_over_three_centuries() {
        let mut buf = Vec::new();
        for day in (d("1900-01-01")..=d("2200-12-31")).step_by(7) {
            buf.clear();
            push_day(&mut buf, day);
            assert_eq!(std::str::from_utf8(&buf).unwrap(), format_day(day));
        }
    }

    #[test]
    fn formatting_from_the_table_matches_chrono_at_its_ends_and_beyond() {
        let first = d("1900-01-01");
        let last = d("2200-12-31");
        // Every day of the table, and days on either side of it (computed instead).
        let mut buf = Vec::new();
        for day in (first - 400)..=(last + 400) {
            buf.clear();
            push_day(&mut buf, day);
            assert_eq!(
                std::str::from_utf8(&buf).unwrap(),
                format_day(day),
                "day {day}"
            );
        }
        assert_eq!(accepted_days(), first..=last);
        assert_eq!(formatted_days().len() as i32, last - first + 1);
    }

    #[test]
    fn iso_parsing_agrees_with_chrono_on_every_day_and_impossible_ones() {
        let mut day = NaiveDate::from_ymd_opt(MIN_YEAR, 1, 1).unwrap();
        let last = NaiveDate::from_ymd_opt(MAX_YEAR, 12, 31).unwrap();
        while day <= last {
            let text = day.format("%Y-%m-%d").to_string();
            assert_eq!(parse_iso(&text), Some(to_day(day)), "{text}");
            day = day.succ_opt().unwrap();
        }
        // Every month's day 0 and the day after its last, in leap and common years
        // (1900 and 2100 are not leap years, 2000 is).
        for y in [1900, 1999, 2000, 2011, 2012, 2100, 2200] {
            for m in 1..=12u32 {
                for d in [0u32, 28, 29, 30, 31, 32] {
                    let text = format!("{y:04}-{m:02}-{d:02}");
                    let chrono = NaiveDate::from_ymd_opt(y, m, d).map(to_day);
                    assert_eq!(parse_iso(&text), chrono, "{text}");
                }
            }
        }
        for bad in ["2011-00-01", "2011-13-01", "1899-12-31", "2201-01-01"] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn direct_month_addition_agrees_with_chrono_on_every_accepted_day() {
        let (first, last) = (d("1900-01-01"), d("2200-12-31"));
        for day in first..=last {
            for months in [0, 1, 2, 3, 6, 11, 12, 13, 18, 24, 25, 48, 120, 1200, 12_000] {
                assert_eq!(
                    add_months(day, months),
                    add_months_chrono(day, months),
                    "{} + {months} months",
                    format_day(day)
                );
            }
        }
        // Outside the accepted years, or further on, chrono answers.
        assert_eq!(add_months(first - 1, 12), add_months_chrono(first - 1, 12));
        assert_eq!(add_months(last, 12_001), add_months_chrono(last, 12_001));
        assert_eq!(add_months(last, u32::MAX), Day::MAX);
    }

    #[test]
    fn month_addition_clamps_to_month_end() {
        assert_eq!(format_day(add_months(d("2011-01-31"), 1)), "2011-02-28");
        assert_eq!(format_day(add_months(d("2012-01-31"), 1)), "2012-02-29");
        assert_eq!(format_day(add_months(d("2012-02-29"), 12)), "2013-02-28");
        assert_eq!(format_day(add_months(d("2012-02-29"), 18)), "2013-08-29");
        assert_eq!(format_day(add_months(d("2011-10-01"), 12)), "2012-10-01");
        assert_eq!(format_day(add_months(d("2011-08-31"), 18)), "2013-02-28");
    }

    #[test]
    fn rejects_impossible_and_out_of_range_dates() {
        for bad in [
            "2011-02-29",
            "2011-13-01",
            "2011-00-10",
            "2011-1-1",
            "11-01-2011",
            "0201-01-01",
            "2999-01-01",
            "2011/01/01",
            "",
            "2011-01-01T00:00",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad:?} accepted");
        }
        assert_eq!(
            parse_with_format("01/10/2011", "%d/%m/%Y"),
            Some(d("2011-10-01"))
        );
        assert_eq!(parse_with_format("31/02/2011", "%d/%m/%Y"), None);
    }
}
