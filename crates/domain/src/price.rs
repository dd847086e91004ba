//! Money: a ticket's price.
//!
//! The reference kept prices as JavaScript floats and charged `price * 100`, which for 19.99 is
//! 1998.9999999999998 cents. A [`Price`] is a whole number of cents. It is read from the
//! decimal text of the API's dollar number (never by multiplying a float), and written back as
//! the shortest dollar number that reads as the same cents.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Number;

use crate::DomainError;

/// The largest price: one million dollars.
const MAX_CENTS: u64 = 100_000_000;

/// A price greater than zero and at most $1,000,000.00, in cents.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Price(u64);

impl Price {
    pub const MAX: Price = Price(MAX_CENTS);

    pub fn from_cents(cents: u64) -> Result<Price, DomainError> {
        if cents == 0 || cents > MAX_CENTS {
            Err(DomainError::InvalidPrice)
        } else {
            Ok(Price(cents))
        }
    }

    /// Reads a JSON number of dollars with at most two decimals.
    ///
    /// The number's decimal text is parsed exactly. serde_json keeps a non-integer number as
    /// an `f64` and prints it in the shortest form that reads back as that `f64`; for every
    /// number a client means as a price that form is the text the client sent (`19.99`,
    /// `1e2`, `0.5`). Digits beyond the seventeenth significant one are already lost when the
    /// JSON is parsed, so `1.0000000000000000001` reads as 1.00 rather than as 3+ decimals.
    pub fn from_dollars_json(number: &Number) -> Result<Price, DomainError> {
        Price::from_dollars_str(&number.to_string())
    }

    /// Reads decimal text of dollars: optional `-`, digits, an optional fraction and an
    /// optional exponent (`19.99`, `10`, `.5`, `1e2`, `1999E-2`). At most two decimals survive
    /// after applying the exponent (trailing zeros do not count: `1.500` is fine).
    pub fn from_dollars_str(text: &str) -> Result<Price, DomainError> {
        let decimal = Decimal::parse(text).ok_or(DomainError::InvalidPrice)?;
        if decimal.negative {
            return Err(DomainError::InvalidPrice);
        }
        let cents = decimal.scaled_to(2).ok_or(DomainError::InvalidPrice)?;
        Price::from_cents(cents)
    }

    pub fn cents(self) -> u64 {
        self.0
    }

    /// The price as the API's JSON number of dollars: an integer when whole (`10`), otherwise
    /// the two-decimal value (`19.99`, `10.5`). Division by 100 is correctly rounded, so the
    /// `f64` is the one nearest the exact decimal and prints as that decimal.
    pub fn to_dollars_json(self) -> Number {
        if self.0.is_multiple_of(100) {
            Number::from(self.0 / 100)
        } else {
            // Every value here is at most 1e8 / 100, finite, so `from_f64` cannot refuse it.
            Number::from_f64(self.0 as f64 / 100.0).unwrap_or_else(|| Number::from(self.0 / 100))
        }
    }
}

impl fmt::Display for Price {
    /// `$19.99`, for humans and logs; the API uses [`Price::to_dollars_json`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Debug for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Price({} cents)", self.0)
    }
}

/// Serializes as the API's dollar number (see [`Price::to_dollars_json`]).
impl Serialize for Price {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_dollars_json().serialize(serializer)
    }
}

/// Deserializes from the API's dollar number (see [`Price::from_dollars_json`]).
impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = Number::deserialize(deserializer)?;
        Price::from_dollars_json(&number).map_err(serde::de::Error::custom)
    }
}

/// A decimal number as written: `digits × 10^-scale`, with the scale possibly negative.
struct Decimal {
    negative: bool,
    /// Significant digits without leading zeros, as ASCII.
    digits: Vec<u8>,
    scale: i64,
}

impl Decimal {
    /// `-? digits? (. digits?)? ([eE] [+-]? digits)?`, with at least one mantissa digit.
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let (whole, fraction) = match mantissa.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (mantissa, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
            return None;
        }
        let exponent: i64 = match exponent {
            None => 0,
            Some(exp) => {
                let unsigned = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if unsigned.is_empty() || !all_digits(unsigned) {
                    return None;
                }
                // An exponent too large for i64 is out of range for a price either way.
                exp.parse().ok()?
            }
        };
        let digits: Vec<u8> = whole
            .bytes()
            .chain(fraction.bytes())
            .skip_while(|&b| b == b'0')
            .collect();
        let fraction_len = i64::try_from(fraction.len()).ok()?;
        Some(Decimal {
            negative,
            digits,
            scale: fraction_len.checked_sub(exponent)?,
        })
    }

    /// The value × 10^`places` as an integer, if that is exact and fits in a `u64`.
    fn scaled_to(&self, places: i64) -> Option<u64> {
        let mut digits = self.digits.as_slice();
        let mut scale = self.scale;
        // Trailing zeros carry no precision: `1.500` has two decimals.
        while scale > places {
            match digits.split_last() {
                Some((b'0', rest)) => {
                    digits = rest;
                    scale -= 1;
                }
                Some(_) => return None,
                None => scale = places,
            }
        }
        let mut value: u64 = 0;
        for &digit in digits {
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
        }
        let shift = u32::try_from(places - scale).ok()?;
        value.checked_mul(10u64.checked_pow(shift)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_number(text: &str) -> Number {
        serde_json::from_str(text).expect("a JSON number")
    }

    #[test]
    fn dollar_numbers_become_exact_cents() {
        let cases = [
            ("19.99", 1999),
            ("10", 1000),
            ("10.5", 1050),
            ("10.50", 1050),
            ("0.01", 1),
            ("0.1", 10),
            ("1e2", 10000),
            ("1E2", 10000),
            ("1.5e1", 1500),
            ("1999e-2", 1999),
            ("1000000", 100_000_000),
            ("1000000.00", 100_000_000),
            ("999999.99", 99_999_999),
            ("0.29", 29),
            ("4.35", 435),
            ("1.005e2", 10050),
        ];
        for (text, cents) in cases {
            let price = Price::from_dollars_json(&json_number(text));
            assert_eq!(price.map(Price::cents), Ok(cents), "{text}");
        }
    }

    #[test]
    fn invalid_dollar_numbers_are_rejected() {
        let cases = [
            "0",
            "0.0",
            "0.00",
            "-1",
            "-0.01",
            "-19.99",
            "19.999",
            "0.001",
            "1e-3",
            "1000000.01",
            "1000001",
            "1e7",
            "1e300",
            "1.7976931348623157e308",
            "18446744073709551615",
            "-9223372036854775808",
            "5e-324",
        ];
        for text in cases {
            assert_eq!(
                Price::from_dollars_json(&json_number(text)),
                Err(DomainError::InvalidPrice),
                "{text}"
            );
        }
    }

    #[test]
    fn invalid_dollar_text_is_rejected() {
        let cases = [
            "",
            "-",
            ".",
            "e2",
            "1e",
            "1e+",
            "abc",
            "1.2.3",
            "1,5",
            " 1",
            "1 ",
            "+1",
            "0x10",
            "NaN",
            "inf",
            "1e99999999999999999999",
            "--1",
            "1.-5",
        ];
        for text in cases {
            assert_eq!(
                Price::from_dollars_str(text),
                Err(DomainError::InvalidPrice),
                "{text:?}"
            );
        }
    }

    #[test]
    fn dollar_text_forms_a_client_might_send_are_read_exactly() {
        let cases = [
            (".5", 50),
            ("5.", 500),
            ("007.10", 710),
            ("1.500", 150),
            ("12E+0", 1200),
        ];
        for (text, cents) in cases {
            assert_eq!(
                Price::from_dollars_str(text).map(Price::cents),
                Ok(cents),
                "{text}"
            );
        }
    }

    #[test]
    fn cents_must_be_positive_and_at_most_a_million_dollars() {
        assert_eq!(Price::from_cents(0), Err(DomainError::InvalidPrice));
        assert_eq!(
            Price::from_cents(100_000_001),
            Err(DomainError::InvalidPrice)
        );
        assert_eq!(Price::from_cents(1).map(Price::cents), Ok(1));
        assert_eq!(Price::from_cents(100_000_000), Ok(Price::MAX));
    }

    #[test]
    fn prices_render_as_the_shortest_dollar_number() {
        let cases = [
            (1999, "19.99"),
            (1000, "10"),
            (1050, "10.5"),
            (1, "0.01"),
            (10, "0.1"),
            (29, "0.29"),
            (100_000_000, "1000000"),
            (99_999_999, "999999.99"),
        ];
        for (cents, text) in cases {
            let price = Price::from_cents(cents).expect("valid cents");
            assert_eq!(price.to_dollars_json().to_string(), text);
            assert_eq!(serde_json::to_string(&price).expect("serialize"), text);
        }
    }

    #[test]
    fn prices_deserialize_from_dollar_numbers_only() {
        let price: Price = serde_json::from_str("19.99").expect("deserialize");
        assert_eq!(price.cents(), 1999);
        for bad in ["\"19.99\"", "0", "19.999", "null", "-5"] {
            assert!(serde_json::from_str::<Price>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_shows_dollars_and_cents() {
        let price = Price::from_cents(1905).expect("valid cents");
        assert_eq!(price.to_string(), "$19.05");
        assert_eq!(format!("{price:?}"), "Price(1905 cents)");
    }

    proptest! {
        #[test]
        fn every_price_round_trips_through_its_json_number(cents in 1..=MAX_CENTS) {
            let price = Price::from_cents(cents).expect("valid cents");
            let json = serde_json::to_string(&price).expect("serialize");
            let number: Number = serde_json::from_str(&json).expect("a JSON number");
            prop_assert_eq!(Price::from_dollars_json(&number), Ok(price));
        }

        #[test]
        fn two_decimal_text_reads_as_exact_cents(dollars in 0u64..=999_999, cents in 0u64..100) {
            let text = format!("{dollars}.{cents:02}");
            let expected = dollars * 100 + cents;
            let parsed = Price::from_dollars_json(&json_number(&text)).map(Price::cents);
            if expected == 0 {
                prop_assert_eq!(parsed, Err(DomainError::InvalidPrice));
            } else {
                prop_assert_eq!(parsed, Ok(expected));
            }
        }

        #[test]
        fn a_third_significant_decimal_is_always_rejected(
            dollars in 0u64..=999_999, cents in 0u64..100, third in 1u64..10,
        ) {
            let text = format!("{dollars}.{cents:02}{third}");
            prop_assert_eq!(
                Price::from_dollars_json(&json_number(&text)),
                Err(DomainError::InvalidPrice)
            );
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "[-+0-9.eE]{0,30}") {
            if let Ok(price) = Price::from_dollars_str(&text) {
                prop_assert!(price.cents() > 0 && price.cents() <= MAX_CENTS);
            }
        }
    }
}
