//! Requests and responses as plain data.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Head,
    Options,
    Patch,
    Other(String),
}

impl Method {
    /// Reads a method name; the standard ones are matched case-sensitively, as HTTP requires.
    pub fn parse(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Other(name) => name,
        }
    }
}

/// An incoming request. `headers` names are lower-case; `path` has no query string, which is
/// in `query` without its `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A body-less request, for tests and simple glue; add headers and a body with the
    /// `with_*` methods.
    pub fn new(method: Method, path_and_query: &str) -> Request {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Request {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// The value of header `name` (any case); the last one when it is repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        last_header(&self.headers, name)
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The client's IP address, from the `spin-client-addr` header the Spin host sets
    /// (`ip:port`, with IPv6 in brackets).
    pub fn client_addr(&self) -> Option<IpAddr> {
        let value = self.header("spin-client-addr")?.trim();
        value
            .parse::<SocketAddr>()
            .map(|addr| addr.ip())
            .or_else(|_| value.parse::<IpAddr>())
            .ok()
    }
}

/// An outgoing response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// `body` as JSON with `content-type: application/json`.
    pub fn json(status: u16, body: &impl Serialize) -> Response {
        match serde_json::to_vec(body) {
            Ok(bytes) => Response {
                status,
                headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                body: bytes,
            },
            Err(error) => ApiError::Internal(
                anyhow::Error::new(error).context("serializing a JSON response body"),
            )
            .into_response(),
        }
    }

    /// Plain UTF-8 text.
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![(
                "content-type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            )],
            body: body.as_bytes().to_vec(),
        }
    }

    /// No body, as for 204.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header; repeated names (such as `set-cookie`) are kept, not replaced.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The value of header `name` (any case); the last one when it is repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        last_header(&self.headers, name)
    }
}

/// The last value of header `name` (any case) in a list of name/value pairs.
fn last_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .rev()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_round_trip_through_their_names() {
        for name in [
            "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "get",
        ] {
            assert_eq!(Method::parse(name).as_str(), name);
        }
        assert_eq!(Method::parse("get"), Method::Other("get".to_owned()));
    }

    #[test]
    fn a_request_splits_its_path_and_query() {
        let request = Request::new(Method::Get, "/api/tickets?page=2&x=y");
        assert_eq!(request.path, "/api/tickets");
        assert_eq!(request.query, "page=2&x=y");
        assert_eq!(Request::new(Method::Get, "/a").query, "");
    }

    #[test]
    fn header_lookup_ignores_case_and_the_last_value_wins() {
        let request = Request::new(Method::Get, "/")
            .with_header("X-Thing", "first")
            .with_header("content-type", "application/json")
            .with_header("x-thing", "second");
        assert_eq!(request.header("x-thing"), Some("second"));
        assert_eq!(request.header("X-THING"), Some("second"));
        assert_eq!(request.header("Content-Type"), Some("application/json"));
        assert_eq!(request.header("missing"), None);
        assert_eq!(
            request.header_values("x-thing").collect::<Vec<_>>(),
            ["first", "second"]
        );
    }

    #[test]
    fn the_client_address_is_the_ip_part_of_spin_client_addr() {
        let cases = [
            (Some("127.0.0.1:54321"), Some("127.0.0.1")),
            (Some("[::1]:8080"), Some("::1")),
            (Some("10.0.0.7"), Some("10.0.0.7")),
            (Some("2001:db8::1"), Some("2001:db8::1")),
            (Some("not an address"), None),
            (Some(""), None),
            (None, None),
        ];
        for (header, expected) in cases {
            let mut request = Request::new(Method::Get, "/");
            if let Some(value) = header {
                request = request.with_header("spin-client-addr", value);
            }
            assert_eq!(
                request.client_addr().map(|ip| ip.to_string()).as_deref(),
                expected,
                "{header:?}"
            );
        }
    }

    #[test]
    fn json_responses_carry_the_json_content_type() {
        let response = Response::json(201, &serde_json::json!({"id": "x"}));
        assert_eq!(response.status, 201);
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.body, br#"{"id":"x"}"#);
    }

    #[test]
    fn text_responses_are_utf8_plain_text() {
        let response = Response::text(200, "signed out");
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(response.body, b"signed out");
    }

    #[test]
    fn repeated_response_headers_are_all_kept() {
        let response = Response::empty(204)
            .with_header("Set-Cookie", "a=1")
            .with_header("set-cookie", "b=2");
        assert_eq!(response.headers.len(), 2);
        assert_eq!(response.header("set-cookie"), Some("b=2"));
        assert!(response.body.is_empty());
    }
}
