//! The one error type of an HTTP handler, and the one place it becomes a response.

use serde::Serialize;

use crate::Response;

/// One failed validation: the request field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything a handler can fail with. Each variant has one status and one client-facing
/// message; [`ApiError::Internal`] hides its cause from the client and logs it instead.
///
/// `Display` is for logs and test failures, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400, one `{message, field}` entry per failure.
    #[error("invalid request: {}", describe(.0))]
    Validation(Vec<FieldError>),
    /// 400 with a message and no field.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: not signed in, or not allowed to touch this resource.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// 404, also for malformed ids and unknown routes.
    #[error("not found")]
    NotFound,
    /// 410: the resource was the caller's and is no more (a pass whose ticket was resold).
    #[error("gone: {0}")]
    Gone(String),
    /// 405 with `Allow`: the route exists, but not for this method (the methods it takes).
    #[error("method not allowed (allowed: {allow})")]
    MethodNotAllowed { allow: &'static str },
    /// 413.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 415.
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// 400: the body is not JSON, or not the JSON the route expects. Holds the parser's
    /// description, which names positions and types but no internals.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// 402: a payment was refused (a declined card); the message is for the payer.
    #[error("payment refused: {0}")]
    PaymentRefused(String),
    /// 502: a system we depend on (Stripe) is unreachable or failing; the cause is logged, the
    /// client is told to try again later.
    #[error("upstream unavailable: {0}")]
    Upstream(String),
    /// 429 with `Retry-After`.
    #[error("too many requests, retry after {retry_after_secs}s")]
    TooManyRequests { retry_after_secs: u64 },
    /// 500 "Something went wrong"; the cause chain goes to the log.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    errors: Vec<ErrorEntry<'a>>,
}

#[derive(Serialize)]
struct ErrorEntry<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub const NOT_SIGNED_IN: &'static str = "You are not signed in";
    pub const INTERNAL_MESSAGE: &'static str = "Something went wrong";
    pub const UPSTREAM_MESSAGE: &'static str =
        "The payment provider is not answering; nothing was charged, try again later";

    /// 401 for a route that needs a signed-in user.
    pub fn not_signed_in() -> ApiError {
        ApiError::NotAuthorized(ApiError::NOT_SIGNED_IN.to_owned())
    }

    /// 401 with the generic message, for a user who may not do this.
    pub fn not_authorized() -> ApiError {
        ApiError::NotAuthorized("Not authorized".to_owned())
    }

    pub fn validation(field: &str, message: &str) -> ApiError {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest(_) | ApiError::MalformedJson(_) => 400,
            ApiError::NotAuthorized(_) => 401,
            ApiError::PaymentRefused(_) => 402,
            ApiError::NotFound => 404,
            ApiError::Gone(_) => 410,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::PayloadTooLarge => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Internal(_) => 500,
            ApiError::Upstream(_) => 502,
        }
    }

    /// The response in the reference's error format. An internal error is logged here, once,
    /// with its full cause chain; the client sees only the fixed message.
    pub fn into_response(self) -> Response {
        let status = self.status();
        let malformed;
        let entries: Vec<ErrorEntry<'_>> = match &self {
            ApiError::Validation(errors) => errors
                .iter()
                .map(|error| ErrorEntry {
                    message: &error.message,
                    field: Some(&error.field),
                })
                .collect(),
            ApiError::MalformedJson(detail) => {
                malformed = format!("Malformed JSON: {detail}");
                vec![message_only(&malformed)]
            }
            ApiError::BadRequest(message)
            | ApiError::NotAuthorized(message)
            | ApiError::Gone(message)
            | ApiError::PaymentRefused(message) => vec![message_only(message)],
            ApiError::Upstream(cause) => {
                log_line::error("upstream", &format!("upstream unavailable: {cause}"));
                vec![message_only(ApiError::UPSTREAM_MESSAGE)]
            }
            ApiError::NotFound => vec![message_only("Not found")],
            ApiError::MethodNotAllowed { .. } => vec![message_only("Method not allowed")],
            ApiError::PayloadTooLarge => vec![message_only("Request body is too large")],
            ApiError::UnsupportedMediaType => {
                vec![message_only("Content-Type must be application/json")]
            }
            ApiError::TooManyRequests { .. } => {
                vec![message_only("Too many requests, try again later")]
            }
            ApiError::Internal(cause) => {
                log_line::error("internal", &format!("internal error: {cause:#}"));
                vec![message_only(ApiError::INTERNAL_MESSAGE)]
            }
        };
        let response = Response::json(status, &ErrorBody { errors: entries });
        match self {
            ApiError::TooManyRequests { retry_after_secs } => {
                response.with_header("retry-after", &retry_after_secs.to_string())
            }
            ApiError::MethodNotAllowed { allow } => response.with_header("allow", allow),
            _ => response,
        }
    }
}

fn message_only(message: &str) -> ErrorEntry<'_> {
    ErrorEntry {
        message,
        field: None,
    }
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|error| format!("{}: {}", error.field, error.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Lets a handler use `?` on an `anyhow::Result`: anything not mapped to a client error is a
/// server fault.
impl From<anyhow::Error> for ApiError {
    fn from(cause: anyhow::Error) -> ApiError {
        ApiError::Internal(cause)
    }
}

/// Lets a handler run its checks inside [`storage::transaction`] and answer with the error that
/// rolled it back: a failing `BEGIN` or `COMMIT` is a server fault.
impl From<storage::StorageError> for ApiError {
    fn from(error: storage::StorageError) -> ApiError {
        ApiError::Internal(anyhow::Error::new(error).context("running a transaction"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use serde_json::{Value, json};

    fn body(response: &Response) -> Value {
        serde_json::from_slice(&response.body).expect("a JSON body")
    }

    #[test]
    fn every_error_has_its_status_and_body_in_the_reference_format() {
        let cases = [
            (
                ApiError::Validation(vec![
                    FieldError::new("email", "Email must be valid"),
                    FieldError::new(
                        "password",
                        "Password must be at least 6 chars long and 255 max",
                    ),
                ]),
                400,
                json!({"errors": [
                    {"message": "Email must be valid", "field": "email"},
                    {"message": "Password must be at least 6 chars long and 255 max", "field": "password"},
                ]}),
            ),
            (
                ApiError::BadRequest("Email is already in use".to_owned()),
                400,
                json!({"errors": [{"message": "Email is already in use"}]}),
            ),
            (
                ApiError::not_signed_in(),
                401,
                json!({"errors": [{"message": "You are not signed in"}]}),
            ),
            (
                ApiError::not_authorized(),
                401,
                json!({"errors": [{"message": "Not authorized"}]}),
            ),
            (
                ApiError::NotFound,
                404,
                json!({"errors": [{"message": "Not found"}]}),
            ),
            (
                ApiError::PaymentRefused("Your card was declined.".to_owned()),
                402,
                json!({"errors": [{"message": "Your card was declined."}]}),
            ),
            (
                ApiError::Upstream("connection refused to api.stripe.com".to_owned()),
                502,
                json!({"errors": [{"message": ApiError::UPSTREAM_MESSAGE}]}),
            ),
            (
                ApiError::PayloadTooLarge,
                413,
                json!({"errors": [{"message": "Request body is too large"}]}),
            ),
            (
                ApiError::UnsupportedMediaType,
                415,
                json!({"errors": [{"message": "Content-Type must be application/json"}]}),
            ),
            (
                ApiError::MalformedJson("expected value at line 1 column 1".to_owned()),
                400,
                json!({"errors": [{"message": "Malformed JSON: expected value at line 1 column 1"}]}),
            ),
            (
                ApiError::TooManyRequests {
                    retry_after_secs: 30,
                },
                429,
                json!({"errors": [{"message": "Too many requests, try again later"}]}),
            ),
            (
                ApiError::Internal(anyhow::anyhow!("database is locked")),
                500,
                json!({"errors": [{"message": "Something went wrong"}]}),
            ),
        ];
        for (error, status, expected) in cases {
            let description = error.to_string();
            let response = error.into_response();
            assert_eq!(response.status, status, "{description}");
            assert_eq!(body(&response), expected, "{description}");
            assert_eq!(
                response.header("content-type"),
                Some("application/json"),
                "{description}"
            );
        }
    }

    #[test]
    fn too_many_requests_says_when_to_retry() {
        let response = ApiError::TooManyRequests {
            retry_after_secs: 42,
        }
        .into_response();
        assert_eq!(response.header("Retry-After"), Some("42"));
    }

    #[test]
    fn method_not_allowed_names_the_methods_the_route_takes() {
        let response = ApiError::MethodNotAllowed { allow: "GET, HEAD" }.into_response();
        assert_eq!(response.status, 405);
        assert_eq!(response.header("allow"), Some("GET, HEAD"));
        assert_eq!(
            body(&response),
            json!({"errors": [{"message": "Method not allowed"}]})
        );
    }

    #[test]
    fn only_too_many_requests_sets_retry_after() {
        let response = ApiError::NotFound.into_response();
        assert_eq!(response.header("retry-after"), None);
    }

    #[test]
    fn an_internal_error_never_shows_its_cause_to_the_client() {
        let cause: anyhow::Result<()> = Err(anyhow::anyhow!("password hash $argon2id$secret"));
        let error = ApiError::from(cause.context("signing in").expect_err("an error"));
        assert!(error.to_string().contains("signing in: password hash"));
        let response = error.into_response();
        let text = String::from_utf8(response.body).expect("utf-8");
        assert!(!text.contains("argon2"));
        assert!(!text.contains("signing in"));
    }

    #[test]
    fn an_empty_validation_list_still_renders_the_format() {
        let response = ApiError::Validation(Vec::new()).into_response();
        assert_eq!(response.status, 400);
        assert_eq!(body(&response), json!({"errors": []}));
    }
}
