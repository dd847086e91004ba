//! Passwords as typed by a user, before hashing.

use std::fmt;

use crate::DomainError;

const MIN_CHARS: usize = 6;
const MAX_CHARS: usize = 255;

/// A trimmed password of 6 to 255 characters (Unicode scalar values, not bytes).
///
/// Leading and trailing whitespace is ignored at sign-up and at sign-in alike, as in the
/// reference. `Debug` never shows the text, so a password cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn parse(text: &str) -> Result<Password, DomainError> {
        let trimmed = text.trim();
        let chars = trimmed.chars().count();
        if (MIN_CHARS..=MAX_CHARS).contains(&chars) {
            Ok(Password(trimmed.to_owned()))
        } else {
            Err(DomainError::InvalidPassword)
        }
    }

    /// The password text, for hashing or verifying a hash and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_password_is_trimmed() {
        let password = Password::parse("  secret1 \t").expect("valid");
        assert_eq!(password.expose(), "secret1");
    }

    #[test]
    fn lengths_outside_six_to_255_characters_after_trimming_are_rejected() {
        let too_long = "x".repeat(256);
        let cases = ["", "     ", "12345", "  12345  ", "ab\u{e9}de", &too_long];
        for text in cases {
            assert_eq!(
                Password::parse(text),
                Err(DomainError::InvalidPassword),
                "{text:?}"
            );
        }
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        assert!(Password::parse("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}").is_ok());
        assert!(Password::parse(&"\u{e9}".repeat(255)).is_ok());
        assert!(Password::parse(&"\u{e9}".repeat(256)).is_err());
    }

    #[test]
    fn the_bounds_themselves_are_accepted() {
        assert!(Password::parse("123456").is_ok());
        assert!(Password::parse(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let password = Password::parse("hunter22").expect("valid");
        assert_eq!(format!("{password:?}"), "Password(..)");
        assert!(!format!("{:?}", Some(&password)).contains("hunter"));
    }

    proptest! {
        #[test]
        fn acceptance_depends_only_on_the_trimmed_character_count(text in "\\PC{0,300}") {
            let expected = (6..=255).contains(&text.trim().chars().count());
            prop_assert_eq!(Password::parse(&text).is_ok(), expected);
        }
    }
}
