//! JSON request bodies.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{ApiError, Request};

/// Reads the request body as JSON into `T`, checking in order: the body is at most
/// `max_bytes` (413), the content type is `application/json`, parameters such as `charset`
/// allowed (415), and the body is JSON of `T`'s shape (400 with the parser's description).
///
/// Handlers usually read into a loose struct of `Option<serde_json::Value>` fields and turn
/// those into domain types with a [`crate::Validator`], so that a missing or mistyped field is
/// a validation message for that field rather than a parse error for the whole body.
pub fn parse_json<T: DeserializeOwned>(request: &Request, max_bytes: usize) -> Result<T, ApiError> {
    if request.body.len() > max_bytes {
        return Err(ApiError::PayloadTooLarge);
    }
    if !request
        .header("content-type")
        .is_some_and(is_json_media_type)
    {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(&request.body)
        .map_err(|error| ApiError::MalformedJson(error.to_string()))
}

fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The string in a loose field, or `""` when it is missing or not a string, so that the
/// domain parser reports it with its own message ("Email must be valid").
pub fn string_or_empty(value: &Option<Value>) -> &str {
    match value {
        Some(Value::String(text)) => text,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        email: Option<Value>,
        count: Option<u32>,
    }

    fn post(content_type: Option<&str>, body: &str) -> Request {
        let request = Request::new(Method::Post, "/api/users/signup").with_body(body);
        match content_type {
            Some(value) => request.with_header("content-type", value),
            None => request,
        }
    }

    fn message(error: ApiError) -> String {
        let response = error.into_response();
        let body: Value = serde_json::from_slice(&response.body).expect("JSON body");
        body["errors"][0]["message"]
            .as_str()
            .expect("a message")
            .to_owned()
    }

    #[test]
    fn a_json_body_is_read_into_the_loose_struct() {
        let body: Body = parse_json(
            &post(Some("application/json"), r#"{"email":"a@b.co"}"#),
            1024,
        )
        .expect("valid body");
        assert_eq!(
            body,
            Body {
                email: Some(Value::String("a@b.co".to_owned())),
                count: None
            }
        );
    }

    #[test]
    fn json_content_types_with_parameters_or_other_case_are_accepted() {
        for content_type in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            " application/json ",
        ] {
            let result: Result<Body, _> = parse_json(&post(Some(content_type), "{}"), 1024);
            assert!(result.is_ok(), "{content_type:?}");
        }
    }

    #[test]
    fn other_content_types_are_unsupported() {
        for content_type in [
            None,
            Some(""),
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/jsonp"),
            Some("multipart/form-data; boundary=x"),
        ] {
            let result: Result<Body, _> = parse_json(&post(content_type, "{}"), 1024);
            assert!(
                matches!(result, Err(ApiError::UnsupportedMediaType)),
                "{content_type:?}"
            );
        }
    }

    #[test]
    fn a_body_over_the_limit_is_too_large_even_before_its_type_is_checked() {
        let body = format!(r#"{{"email":"{}"}}"#, "a".repeat(100));
        let result: Result<Body, _> = parse_json(&post(None, &body), 64);
        assert!(matches!(result, Err(ApiError::PayloadTooLarge)));
        let exact = "{}".to_owned() + &" ".repeat(62);
        let result: Result<Body, _> = parse_json(&post(Some("application/json"), &exact), 64);
        assert!(result.is_ok(), "a body of exactly the limit is accepted");
    }

    #[test]
    fn malformed_json_is_a_bad_request_that_says_where() {
        let cases = [
            (
                "",
                "Malformed JSON: EOF while parsing a value at line 1 column 0",
            ),
            (
                "{",
                "Malformed JSON: EOF while parsing an object at line 1 column 1",
            ),
            (
                "not json",
                "Malformed JSON: expected ident at line 1 column 2",
            ),
            (
                r#"{"email": }"#,
                "Malformed JSON: expected value at line 1 column 11",
            ),
            (
                "{} trailing",
                "Malformed JSON: trailing characters at line 1 column 4",
            ),
        ];
        for (body, expected) in cases {
            let result: Result<Body, _> = parse_json(&post(Some("application/json"), body), 1024);
            let error = result.expect_err("malformed");
            assert_eq!(error.status(), 400, "{body:?}");
            assert_eq!(message(error), expected, "{body:?}");
        }
    }

    #[test]
    fn json_of_the_wrong_shape_is_malformed() {
        let cases = [
            // serde reads a struct from an array too, positionally; an empty one is short.
            (
                "[]",
                "Malformed JSON: invalid length 0, expected struct Body with 2 elements at line 1 column 2",
            ),
            (
                "\"x\"",
                "Malformed JSON: invalid type: string \"x\", expected struct Body at line 1 column 3",
            ),
            (
                r#"{"count":"3"}"#,
                "Malformed JSON: invalid type: string \"3\", expected u32 at line 1 column 12",
            ),
        ];
        for (body, expected) in cases {
            let result: Result<Body, _> = parse_json(&post(Some("application/json"), body), 1024);
            assert_eq!(
                message(result.expect_err("wrong shape")),
                expected,
                "{body:?}"
            );
        }
    }

    #[test]
    fn only_string_fields_yield_their_text() {
        let cases = [
            (None, ""),
            (Some(Value::Null), ""),
            (Some(Value::from(5)), ""),
            (Some(Value::from(true)), ""),
            (Some(Value::String("text".to_owned())), "text"),
        ];
        for (value, expected) in cases {
            assert_eq!(string_or_empty(&value), expected, "{value:?}");
        }
    }
}
