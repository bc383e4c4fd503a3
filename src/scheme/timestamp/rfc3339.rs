//! RFC 3339 date-times (`2025-07-10T05:10:55Z`, `…55.123+01:00`) to and
//! from Unix seconds, for the times providers sign inside their bodies.
//! Two conversions of the proleptic Gregorian calendar (H. Hinnant's
//! `days_from_civil`) are all the replay window needs.

use std::time::{Duration, SystemTime};

/// The instant `text` names, or `None` when it is not an RFC 3339
/// date-time (a date alone, no offset, a field out of range).
pub fn parse(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let days_in_month = match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    // 60: a leap second, counted as the next one.
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some((b'.', fraction)) = rest.split_first() {
        let len = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        for (i, &d) in fraction[..len].iter().take(9).enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &fraction[len..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |d: &u8| d.is_ascii_digit().then(|| i64::from(d - b'0'));
            let (h, m) = (digit(h1)? * 10 + digit(h2)?, digit(m1)? * 10 + digit(m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset * 60;
    let whole = Duration::new(seconds.unsigned_abs(), 0);
    let time = if seconds >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(whole)?
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(whole)?
    };
    time.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// Whole Unix seconds of an RFC 3339 date-time given as bytes (a signed
/// header such as Twitch's timestamp); `None` when it is not one, or is
/// before 1970.
pub fn unix_seconds(text: &[u8]) -> Option<u64> {
    let time = parse(std::str::from_utf8(text).ok()?)?;
    Some(time.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs())
}

/// `time` as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds, UTC).
pub fn format(time: SystemTime) -> String {
    let seconds = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> Option<u64> {
        parse(text).map(|t| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs())
    }

    #[test]
    fn known_instants() {
        // `date -u -d 2025-07-10T05:10:55Z +%s`
        assert_eq!(secs("2025-07-10T05:10:55Z"), Some(1_752_124_255));
        assert_eq!(secs("2023-03-15T15:42:12Z"), Some(1_678_894_932));
        assert_eq!(secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(secs("2024-02-29T12:00:00+01:30"), Some(1_709_202_600));
        assert_eq!(secs("2025-07-10T05:10:55.999999999Z"), Some(1_752_124_255));
        assert_eq!(
            parse("2025-07-10T05:10:55.5Z").unwrap(),
            parse("2025-07-10T05:10:55Z").unwrap() + Duration::from_millis(500)
        );
    }

    #[test]
    fn header_bytes_to_seconds() {
        assert_eq!(
            unix_seconds(b"2019-11-16T10:11:12.634234626Z"),
            Some(1_573_899_072)
        );
        assert_eq!(unix_seconds(b"2024-02-29T23:59:59Z"), Some(1_709_251_199));
        for bad in [
            &b"2023-02-29T00:00:00Z"[..],
            b"1969-12-31T23:59:59Z",
            b"\xff",
            b"",
        ] {
            assert_eq!(unix_seconds(bad), None);
        }
    }

    #[test]
    fn not_rfc3339() {
        for text in [
            "2025-07-10",
            "2025-07-10T05:10:55",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-07-10T25:10:55Z",
            "2025-07-10T05:10:55.Z",
            "2025-07-10T05:10:55+0100",
            "2025-07-10T05:10:55Zjunk",
            "１２３４-07-10T05:10:55Z",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn format_round_trips() {
        for text in [
            "2025-07-10T05:10:55Z",
            "2000-02-29T23:59:59Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
