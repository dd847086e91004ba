//! The one error type of domain validation.

/// Why a value could not become a domain type. `Display` is the message a client sees in a 400
/// validation response, next to [`DomainError::field`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("Email must be valid")]
    InvalidEmail,
    #[error("Password must be at least 6 chars long and 255 max")]
    InvalidPassword,
    #[error("Price must be a number greater than 0 and at most 1000000 with at most two decimals")]
    InvalidPrice,
    #[error("Title is required")]
    MissingTitle,
    #[error("Title must be at most 255 characters")]
    TitleTooLong,
}

impl DomainError {
    /// The request field this error is reported against.
    pub fn field(&self) -> &'static str {
        match self {
            DomainError::InvalidEmail => "email",
            DomainError::InvalidPassword => "password",
            DomainError::InvalidPrice => "price",
            DomainError::MissingTitle | DomainError::TitleTooLong => "title",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_names_its_field_and_has_a_message() {
        let cases = [
            (DomainError::InvalidEmail, "email", "Email must be valid"),
            (
                DomainError::InvalidPassword,
                "password",
                "Password must be at least 6 chars long and 255 max",
            ),
            (
                DomainError::InvalidPrice,
                "price",
                "Price must be a number greater than 0 and at most 1000000 with at most two decimals",
            ),
            (DomainError::MissingTitle, "title", "Title is required"),
            (
                DomainError::TitleTooLong,
                "title",
                "Title must be at most 255 characters",
            ),
        ];
        for (error, field, message) in cases {
            assert_eq!(error.field(), field);
            assert_eq!(error.to_string(), message);
        }
    }
}
