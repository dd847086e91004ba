//! Collecting every validation failure of a request before answering.

use anyhow::anyhow;
use domain::DomainError;

use crate::{ApiError, FieldError};

/// Turns loose request fields into domain types, recording each failure against its field,
/// so the 400 lists every problem at once:
///
/// ```
/// use api::{ApiError, Validator, string_or_empty};
/// use domain::{Email, Password};
/// use serde_json::Value;
///
/// # fn main() -> Result<(), ApiError> {
/// let (email, password): (Option<Value>, Option<Value>) = (Some("a@b.co".into()), None);
/// let mut v = Validator::new();
/// let email = v.check("email", Email::parse(string_or_empty(&email)));
/// let password = v.check("password", Password::parse(string_or_empty(&password)));
/// let result = v.finish_with(|| Some((email?, password?)));
/// assert!(matches!(result, Err(ApiError::Validation(errors)) if errors.len() == 1));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Validator {
        Validator::default()
    }

    /// The value, or `None` after recording the domain error's message against `field`.
    /// Only [`DomainError`]s are accepted because their messages are written for clients.
    pub fn check<T>(&mut self, field: &str, result: Result<T, DomainError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, &error.to_string());
                None
            }
        }
    }

    /// Records a failure that is not a [`DomainError`], such as a malformed id.
    pub fn add(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError::new(field, message));
    }

    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok` if nothing failed, otherwise a 400 listing every failure.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }

    /// Like [`Validator::finish`], then assembles the checked values. `build` returns `None`
    /// only if a check failed, which [`Validator::finish`] already reported; if it does so
    /// without a recorded failure, that is a bug in the handler and becomes a 500.
    pub fn finish_with<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        self.finish()?;
        build().ok_or_else(|| {
            ApiError::Internal(anyhow!("validation passed but a checked value was missing"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Email, Password, Price};

    #[test]
    fn every_failed_field_is_reported_in_order() {
        let mut v = Validator::new();
        let email = v.check("email", Email::parse("nope"));
        let password = v.check("password", Password::parse("123"));
        let price = v.check("price", Price::from_cents(5));
        assert!(email.is_none() && password.is_none());
        assert_eq!(price.map(Price::cents), Some(5));
        assert!(!v.is_valid());
        match v.finish() {
            Err(ApiError::Validation(errors)) => assert_eq!(
                errors,
                [
                    FieldError::new("email", "Email must be valid"),
                    FieldError::new(
                        "password",
                        "Password must be at least 6 chars long and 255 max"
                    ),
                ]
            ),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn valid_fields_are_assembled() {
        let mut v = Validator::new();
        let email = v.check("email", Email::parse("A@B.co"));
        let password = v.check("password", Password::parse("secret1"));
        let (email, password) = v
            .finish_with(|| Some((email?, password?)))
            .expect("valid input");
        assert_eq!(email.as_str(), "a@b.co");
        assert_eq!(password.expose(), "secret1");
    }

    #[test]
    fn a_failure_added_by_hand_is_reported() {
        let mut v = Validator::new();
        v.add("ticketId", "TicketId must be provided");
        assert!(matches!(
            v.finish(),
            Err(ApiError::Validation(errors)) if errors == [FieldError::new("ticketId", "TicketId must be provided")]
        ));
    }

    #[test]
    fn a_missing_value_without_a_recorded_failure_is_an_internal_error() {
        let result: Result<(), _> = Validator::new().finish_with(|| None);
        assert!(matches!(result, Err(ApiError::Internal(_))));
    }
}
