//! The current time, and the timestamps the API and events carry: RFC 3339 UTC with
//! milliseconds (`2026-11-25T03:04:05.678Z`), written by [`rfc3339_millis`] and read back by
//! [`parse_rfc3339_millis`].

/// The current time, injected so that tests control it.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The text is not a timestamp in the form [`rfc3339_millis`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 UTC timestamp with milliseconds")]
pub struct InvalidTimestamp;

const MS_PER_DAY: u64 = 86_400_000;

/// `ms` since the Unix epoch as RFC 3339 UTC with milliseconds, such as
/// `2026-11-25T03:04:05.678Z`: the form of an envelope's `occurredAt`.
pub fn rfc3339_millis(ms: u64) -> String {
    let (year, month, day) = civil_from_days(ms / MS_PER_DAY);
    let of_day = ms % MS_PER_DAY;
    let (hours, minutes) = (of_day / 3_600_000, of_day / 60_000 % 60);
    let (seconds, millis) = (of_day / 1000 % 60, of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z")
}

/// Reads a timestamp exactly in the form [`rfc3339_millis`] writes (`YYYY-MM-DDTHH:MM:SS.mmmZ`,
/// from 1970 on) back into milliseconds since the Unix epoch.
pub fn parse_rfc3339_millis(text: &str) -> Result<u64, InvalidTimestamp> {
    let bytes = text.as_bytes();
    if bytes.len() != 24 {
        return Err(InvalidTimestamp);
    }
    for (index, expected) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        if bytes[index] != expected {
            return Err(InvalidTimestamp);
        }
    }
    let number = |range: std::ops::Range<usize>| -> Result<u64, InvalidTimestamp> {
        let digits = &bytes[range];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(InvalidTimestamp);
        }
        Ok(digits
            .iter()
            .fold(0, |value, digit| value * 10 + u64::from(digit - b'0')))
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hours, minutes, seconds) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let millis = number(20..23)?;
    if year < 1970 || !(1..=12).contains(&month) || hours > 23 || minutes > 59 || seconds > 59 {
        return Err(InvalidTimestamp);
    }
    let days = days_from_civil(year, month, day).ok_or(InvalidTimestamp)?;
    Ok(days * MS_PER_DAY + hours * 3_600_000 + minutes * 60_000 + seconds * 1000 + millis)
}

/// Days from 1970-01-01 to the given date, or `None` if the day does not exist in that month;
/// the inverse of [`civil_from_days`], by the same March-based eras.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let month_length = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day == 0 || day > month_length {
        return None;
    }
    // January and February count as months 10 and 11 of the previous March-based year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year % 400;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// The proleptic Gregorian date `days` after 1970-01-01, by Howard Hinnant's `civil_from_days`:
/// count in 400-year eras of 146,097 days that start on 1 March, so the leap day is the last
/// day of a year and every month's offset is a linear formula.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01 to 1970-01-01.
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 is March, 11 is February.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_are_formatted_as_rfc3339_utc_with_millis() {
        // Expected values from GNU `date -u -d @<secs>`.
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (86_399_999, "1970-01-01T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (951_868_800_000, "2000-03-01T00:00:00.000Z"),
            (1_700_000_000_000, "2023-11-14T22:13:20.000Z"),
            (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
            (1_735_689_599_999, "2024-12-31T23:59:59.999Z"),
            (1_795_575_845_678, "2026-11-25T03:04:05.678Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ];
        for (ms, expected) in cases {
            assert_eq!(rfc3339_millis(ms), expected, "{ms}");
        }
    }

    fn is_leap(year: u64) -> bool {
        year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
    }

    #[test]
    fn every_day_until_the_year_2400_follows_the_one_before() {
        let (mut year, mut month, mut day) = (1970, 1, 1);
        for days in 0..157_000 {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            let month_length = match month {
                2 if is_leap(year) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > month_length {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
        assert!(year >= 2399, "the walk reached {year}");
    }

    #[test]
    fn every_formatted_instant_parses_back_to_itself() {
        for ms in [
            0,
            1,
            86_399_999,
            951_782_400_000,
            1_709_164_800_000,
            1_795_575_845_678,
            4_107_542_400_000,
            253_402_300_799_999,
        ] {
            assert_eq!(parse_rfc3339_millis(&rfc3339_millis(ms)), Ok(ms), "{ms}");
        }
        // Every day of a leap cycle and more, at a time of day with every field set.
        for days in 0..(4 * 366 + 60) {
            let ms = days * MS_PER_DAY + 45_296_789;
            assert_eq!(
                parse_rfc3339_millis(&rfc3339_millis(ms)),
                Ok(ms),
                "day {days}"
            );
        }
    }

    #[test]
    fn anything_but_the_exact_form_is_not_a_timestamp() {
        for text in [
            "",
            "2026-11-25T03:04:05Z",
            "2026-11-25T03:04:05.678",
            "2026-11-25 03:04:05.678Z",
            "2026-11-25T03:04:05.678+00:00",
            "2026-13-01T00:00:00.000Z",
            "2026-02-29T00:00:00.000Z",
            "2026-04-31T00:00:00.000Z",
            "2026-11-00T00:00:00.000Z",
            "2026-11-25T24:00:00.000Z",
            "2026-11-25T03:60:05.678Z",
            "1969-12-31T23:59:59.999Z",
            "2026-11-25T03:04:05.67aZ",
            "+026-11-25T03:04:05.678Z",
        ] {
            assert_eq!(
                parse_rfc3339_millis(text),
                Err(InvalidTimestamp),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_rfc3339_millis("2024-02-29T00:00:00.000Z"),
            Ok(1_709_164_800_000)
        );
    }
}
