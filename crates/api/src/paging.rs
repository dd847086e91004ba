//! Keyset paging, shared by every list route: `?limit=&cursor=`, and a `Link: rel="next"` header
//! (with `x-next-cursor`) while more follow. The cursor is the position (a row's `seq`) of the
//! last item of the previous page, so a page never skips or repeats a row that was inserted
//! meanwhile.

use crate::{ApiError, Response, Validator};

pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 500;
pub const INVALID_LIMIT: &str = "limit must be a whole number from 1 to 500";
pub const INVALID_CURSOR: &str = "cursor must be the x-next-cursor of a previous page";

/// Which page of a listing a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    /// The position of the last item of the previous page; `None` for the first page.
    pub after: Option<i64>,
}

impl Page {
    /// Reads `limit` and `cursor` from a query string, or a 400 naming each bad one. Other
    /// parameters are ignored, and the first of a repeated one counts.
    pub fn from_query(query: &str) -> Result<Page, ApiError> {
        let param = |name: &str| {
            query
                .split('&')
                .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value)
        };
        let mut v = Validator::new();
        let limit = match param("limit") {
            None => Some(DEFAULT_PAGE_SIZE),
            Some(text) => decimal(text)
                .and_then(|limit| u32::try_from(limit).ok())
                .filter(|limit| (1..=MAX_PAGE_SIZE).contains(limit))
                .or_else(|| {
                    v.add("limit", INVALID_LIMIT);
                    None
                }),
        };
        let after = match param("cursor") {
            None => Some(None),
            Some(text) => decimal(text).map(Some).or_else(|| {
                v.add("cursor", INVALID_CURSOR);
                None
            }),
        };
        v.finish_with(|| {
            Some(Page {
                limit: limit?,
                after: after?,
            })
        })
    }

    /// How many rows to fetch: one more than the page holds, which tells whether a next page
    /// exists without a second query.
    pub fn fetch(&self) -> u32 {
        self.limit + 1
    }

    /// Cuts `items` (fetched with [`fetch`](Self::fetch)) to the page and answers 200 with them,
    /// plus `Link: <path?limit=&cursor=>; rel="next"` and `x-next-cursor` when more follow.
    /// `position` gives an item's cursor value.
    pub fn respond<T: serde::Serialize>(
        &self,
        path: &str,
        items: Vec<T>,
        position: impl Fn(&T) -> i64,
    ) -> Response {
        self.respond_with(path, &[], items, position)
    }

    /// [`respond`](Self::respond) for a listing filtered by `params` (such as a search), which the
    /// next page's link repeats (those with an empty value left out).
    pub fn respond_with<T: serde::Serialize>(
        &self,
        path: &str,
        params: &[(&str, &str)],
        mut items: Vec<T>,
        position: impl Fn(&T) -> i64,
    ) -> Response {
        let next = self.cut(&mut items, position);
        let response = Response::json(200, &items);
        match next {
            Some(cursor) => {
                let mut link = format!("<{path}?limit={}&cursor={cursor}", self.limit);
                for (name, value) in params.iter().filter(|(_, value)| !value.is_empty()) {
                    link.push_str(&format!("&{name}={}", crate::query::encode(value)));
                }
                link.push_str(">; rel=\"next\"");
                response
                    .with_header("link", &link)
                    .with_header("x-next-cursor", &cursor.to_string())
            }
            None => response,
        }
    }

    /// Cuts `items` (fetched with [`fetch`](Self::fetch)) to the page; the cursor of the next
    /// page when more follow.
    pub fn cut<T>(&self, items: &mut Vec<T>, position: impl Fn(&T) -> i64) -> Option<i64> {
        let limit = self.limit as usize;
        let more = items.len() > limit;
        items.truncate(limit);
        items.last().filter(|_| more).map(position)
    }
}

/// Digits only (no sign, no spaces) that fit in an `i64`.
fn decimal(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_page_is_read_from_the_query() {
        let cases = [
            ("", DEFAULT_PAGE_SIZE, None),
            ("limit=1", 1, None),
            ("limit=500&cursor=0", 500, Some(0)),
            ("cursor=42&limit=7", 7, Some(42)),
            ("cursor=42&cursor=x", DEFAULT_PAGE_SIZE, Some(42)),
            ("x=1&&limit=3", 3, None),
        ];
        for (query, limit, after) in cases {
            assert_eq!(
                Page::from_query(query).expect("valid query"),
                Page { limit, after },
                "{query}"
            );
        }
    }

    #[test]
    fn invalid_limits_and_cursors_are_rejected_with_every_field_error() {
        let limit = json!({"message": INVALID_LIMIT, "field": "limit"});
        let cursor = json!({"message": INVALID_CURSOR, "field": "cursor"});
        let cases = [
            ("limit=0", vec![&limit]),
            ("limit=-1", vec![&limit]),
            ("limit=abc", vec![&limit]),
            ("limit=501", vec![&limit]),
            ("limit=1.5", vec![&limit]),
            ("limit=", vec![&limit]),
            ("limit", vec![&limit]),
            ("limit=99999999999999999999", vec![&limit]),
            ("cursor=abc", vec![&cursor]),
            ("cursor=-1", vec![&cursor]),
            ("cursor=", vec![&cursor]),
            ("cursor=99999999999999999999", vec![&cursor]),
            ("limit=0&cursor=x", vec![&limit, &cursor]),
        ];
        for (query, expected) in cases {
            let response = Page::from_query(query)
                .expect_err("invalid")
                .into_response();
            assert_eq!(response.status, 400, "{query}");
            let body: serde_json::Value =
                serde_json::from_slice(&response.body).expect("JSON error body");
            assert_eq!(body["errors"], json!(expected), "{query}");
        }
    }

    #[test]
    fn a_full_page_links_to_the_next_and_a_short_one_does_not() {
        let page = Page {
            limit: 2,
            after: None,
        };
        let full = page.respond("/api/things", vec![10, 9, 8], |n| *n);
        assert_eq!(full.body, b"[10,9]");
        assert_eq!(
            full.header("link"),
            Some("</api/things?limit=2&cursor=9>; rel=\"next\"")
        );
        assert_eq!(full.header("x-next-cursor"), Some("9"));
        let last = page.respond("/api/things", vec![7, 6], |n| *n);
        assert_eq!(last.body, b"[7,6]");
        assert_eq!(last.header("link"), None);
        assert_eq!(last.header("x-next-cursor"), None);
    }

    #[test]
    fn the_next_link_repeats_the_filter_encoded() {
        let page = Page {
            limit: 1,
            after: None,
        };
        let response =
            page.respond_with("/api/things", &[("q", "rock & roll")], vec![5, 4], |n| *n);
        assert_eq!(
            response.header("link"),
            Some("</api/things?limit=1&cursor=5&q=rock%20%26%20roll>; rel=\"next\"")
        );
    }
}
