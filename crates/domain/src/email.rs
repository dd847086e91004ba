//! Email addresses, normalised for identity.
//!
//! The reference compared emails byte for byte, so `A@x.com` and `a@x.com` were two accounts.
//! An [`Email`] is trimmed and lower-cased when parsed, so equal addresses are equal values.
//! The accepted grammar is a pragmatic subset of RFC 5321 (ASCII only, no quoted local parts,
//! no IP-literal domains): what real sign-up forms accept.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DomainError;

const MAX_TOTAL: usize = 254;
const MAX_LOCAL: usize = 64;
const MAX_LABEL: usize = 63;

/// A valid, trimmed, lower-case email address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    /// Trims, lower-cases and validates `text`.
    pub fn parse(text: &str) -> Result<Email, DomainError> {
        let email = text.trim().to_ascii_lowercase();
        if email.len() > MAX_TOTAL || !email.is_ascii() {
            return Err(DomainError::InvalidEmail);
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(DomainError::InvalidEmail);
        };
        if valid_local_part(local) && valid_domain(domain) {
            Ok(Email(email))
        } else {
            Err(DomainError::InvalidEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Dot-separated atoms of RFC 5322 `atext` (so no `@`, whitespace or quotes), 1 to 64 bytes.
fn valid_local_part(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    !local.is_empty()
        && local.len() <= MAX_LOCAL
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c))
        })
}

/// At least two labels of letters, digits and inner hyphens; the top-level label is
/// alphabetic (or an IDNA `xn--` label), so `a@1.2.3.4` and `a@localhost` are refused.
fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let Some(top) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && labels.iter().all(|label| valid_label(label))
        && top.len() >= 2
        && (top.chars().all(|c| c.is_ascii_alphabetic()) || top.starts_with("xn--"))
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({:?})", self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Email::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_valid_email_is_trimmed_and_lower_cased() {
        let email = Email::parse("  Alice.Smith+Tickets@Example.COM \n").expect("valid");
        assert_eq!(email.as_str(), "alice.smith+tickets@example.com");
        assert_eq!(
            email,
            Email::parse("alice.smith+tickets@example.com").expect("valid")
        );
    }

    #[test]
    fn sensible_addresses_are_accepted() {
        let cases = [
            "a@b.co",
            "test@test.com",
            "first.last@sub.example.org",
            "user_name-1@my-host.example",
            "o'brien@example.ie",
            "x@xn--bcher-kva.xn--p1ai",
            "1234@123.com",
        ];
        for text in cases {
            assert!(Email::parse(text).is_ok(), "{text:?} should be valid");
        }
    }

    #[test]
    fn malformed_addresses_are_rejected_with_the_email_message() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_label = format!("a@{}.com", "b".repeat(64));
        let long_total = format!("a@{}.com", vec!["c".repeat(60); 5].join("."));
        let cases: Vec<&str> = vec![
            "",
            "   ",
            "plainaddress",
            "@example.com",
            "user@",
            "user@@example.com",
            "a@b@example.com",
            "user@example",
            "user@localhost",
            "user@.example.com",
            "user@example..com",
            "user@example.com.",
            "user@-example.com",
            "user@example-.com",
            "user@exa_mple.com",
            "user@example.c",
            "user@1.2.3.4",
            "us er@example.com",
            "user@exa mple.com",
            "user\t@example.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "\"quoted\"@example.com",
            "ünï@example.com",
            "user@exämple.com",
            "user@[127.0.0.1]",
            &long_local,
            &long_label,
            &long_total,
        ];
        for text in cases {
            assert_eq!(
                Email::parse(text),
                Err(DomainError::InvalidEmail),
                "{text:?} should be invalid"
            );
        }
    }

    #[test]
    fn the_longest_allowed_local_part_is_accepted() {
        let text = format!("{}@example.com", "a".repeat(64));
        assert!(Email::parse(&text).is_ok());
    }

    #[test]
    fn emails_serialize_as_their_normalised_string() {
        let email = Email::parse("Bob@Example.com").expect("valid");
        assert_eq!(
            serde_json::to_string(&email).expect("serialize"),
            "\"bob@example.com\""
        );
        let back: Email = serde_json::from_str("\" BOB@example.com\"").expect("deserialize");
        assert_eq!(back, email);
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent_and_never_panics(text in "\\PC{0,80}") {
            if let Ok(email) = Email::parse(&text) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                prop_assert_eq!(email.as_str(), email.as_str().to_lowercase());
                prop_assert!(!email.as_str().contains(char::is_whitespace));
            }
        }

        #[test]
        fn generated_addresses_parse_case_insensitively(
            local in "[a-zA-Z0-9][a-zA-Z0-9._+-]{0,20}[a-zA-Z0-9]",
            host in "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?",
            tld in "[a-zA-Z]{2,6}",
        ) {
            prop_assume!(!local.contains(".."));
            let text = format!("{local}@{host}.{tld}");
            let email = Email::parse(&text);
            prop_assert!(email.is_ok(), "{} should be valid", text);
            prop_assert_eq!(email, Email::parse(&text.to_uppercase()));
        }
    }
}
