//! Ticket titles.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DomainError;

const MAX_CHARS: usize = 255;

/// A trimmed, non-empty title of at most 255 characters.
///
/// The reference accepted `" "` as a title; a title of only whitespace is missing here.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Title(String);

impl Title {
    pub fn parse(text: &str) -> Result<Title, DomainError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            Err(DomainError::MissingTitle)
        } else if trimmed.chars().count() > MAX_CHARS {
            Err(DomainError::TitleTooLong)
        } else {
            Ok(Title(trimmed.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Title({:?})", self.0)
    }
}

impl Serialize for Title {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Title {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Title::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_trimmed() {
        assert_eq!(
            Title::parse("  Concert  ").expect("valid").as_str(),
            "Concert"
        );
    }

    #[test]
    fn empty_and_overlong_titles_are_rejected() {
        let too_long = "t".repeat(256);
        let cases = [
            ("", DomainError::MissingTitle),
            ("   ", DomainError::MissingTitle),
            ("\n\t", DomainError::MissingTitle),
            (too_long.as_str(), DomainError::TitleTooLong),
        ];
        for (text, error) in cases {
            assert_eq!(Title::parse(text), Err(error), "{text:?}");
        }
    }

    #[test]
    fn a_title_of_255_characters_is_accepted() {
        assert!(Title::parse(&"\u{e9}".repeat(255)).is_ok());
    }

    #[test]
    fn titles_round_trip_through_json() {
        let title = Title::parse("Gig").expect("valid");
        let json = serde_json::to_string(&title).expect("serialize");
        assert_eq!(json, "\"Gig\"");
        assert_eq!(
            serde_json::from_str::<Title>(&json).expect("deserialize"),
            title
        );
        assert!(serde_json::from_str::<Title>("\" \"").is_err());
    }
}
