//! One file's answer: its ETag, caching, compression and the 304 when the client has it.

use crate::{accepts_gzip, cache_control, etag, gzip, if_none_match, is_compressible};

/// Below this, gzip's header costs more than it saves.
const MIN_GZIP_BYTES: usize = 1024;

/// What the request says about the answer it wants.
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    /// The query string, for a fingerprint (`v=<etag>`).
    pub query: &'a str,
    pub accept_encoding: &'a str,
    pub if_none_match: Option<&'a str>,
    /// `false` for `HEAD`.
    pub include_body: bool,
}

/// An answer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The answer for `contents` of `content_type`: 200 (gzipped when the client accepts it and it
/// is text) or a bodiless 304 when the client's copy is current. Every answer carries its
/// representation's ETag, `Vary: accept-encoding`, and caching: a year for a fingerprinted URL
/// whose fingerprint is current, revalidation for everything else.
pub fn serve(contents: Vec<u8>, content_type: &'static str, request: Conditions<'_>) -> Served {
    let tag = etag(&contents);
    let fingerprinted = request
        .query
        .split('&')
        .any(|pair| pair.strip_prefix("v=") == Some(tag.trim_matches('"')));
    let gzipped = is_compressible(content_type)
        && contents.len() >= MIN_GZIP_BYTES
        && accepts_gzip(request.accept_encoding);
    // Each representation has its own tag.
    let tag = if gzipped {
        format!("{}-gz\"", tag.trim_end_matches('"'))
    } else {
        tag
    };
    let mut headers = vec![
        ("etag", tag.clone()),
        ("cache-control", cache_control(fingerprinted).to_owned()),
        ("vary", "accept-encoding".to_owned()),
    ];
    if request
        .if_none_match
        .is_some_and(|header| if_none_match(header, &tag))
    {
        return Served {
            status: 304,
            headers,
            body: Vec::new(),
        };
    }
    headers.push(("content-type", content_type.to_owned()));
    let body = if gzipped {
        headers.push(("content-encoding", "gzip".to_owned()));
        gzip(&contents)
    } else {
        contents
    };
    Served {
        status: 200,
        headers,
        body: if request.include_body {
            body
        } else {
            Vec::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(served: &'a Served, name: &str) -> Option<&'a str> {
        served
            .headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    fn get<'a>() -> Conditions<'a> {
        Conditions {
            include_body: true,
            ..Conditions::default()
        }
    }

    #[test]
    fn a_file_is_served_with_its_tag_and_revalidated() {
        let served = serve(b"body{}".to_vec(), "text/css; charset=utf-8", get());
        assert_eq!(served.status, 200);
        assert_eq!(served.body, b"body{}");
        assert_eq!(header(&served, "cache-control"), Some("no-cache"));
        assert_eq!(
            header(&served, "content-encoding"),
            None,
            "too small to compress"
        );
        let tag = header(&served, "etag").expect("a tag").to_owned();
        let again = serve(
            b"body{}".to_vec(),
            "text/css; charset=utf-8",
            Conditions {
                if_none_match: Some(&tag),
                ..get()
            },
        );
        assert_eq!((again.status, again.body.len()), (304, 0));
    }

    #[test]
    fn a_current_fingerprint_is_cached_for_a_year_and_a_stale_one_is_not() {
        let contents = b"let x = 1;".to_vec();
        let tag = etag(&contents);
        let query = format!("v={}", tag.trim_matches('"'));
        let current = serve(
            contents.clone(),
            "text/javascript",
            Conditions {
                query: &query,
                ..get()
            },
        );
        assert_eq!(
            header(&current, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        let stale = serve(
            contents,
            "text/javascript",
            Conditions {
                query: "v=0000",
                ..get()
            },
        );
        assert_eq!(header(&stale, "cache-control"), Some("no-cache"));
    }

    #[test]
    fn text_is_gzipped_for_clients_that_accept_it_under_its_own_tag() {
        let page = "<li>ticket</li>".repeat(200).into_bytes();
        let plain = serve(page.clone(), "text/html; charset=utf-8", get());
        let zipped = serve(
            page.clone(),
            "text/html; charset=utf-8",
            Conditions {
                accept_encoding: "gzip, br",
                ..get()
            },
        );
        assert_eq!(header(&zipped, "content-encoding"), Some("gzip"));
        assert!(zipped.body.len() < page.len() / 10);
        assert_ne!(header(&plain, "etag"), header(&zipped, "etag"));
        let image = serve(
            vec![0; 4096],
            "image/png",
            Conditions {
                accept_encoding: "gzip",
                ..get()
            },
        );
        assert_eq!(header(&image, "content-encoding"), None);
    }

    #[test]
    fn head_gets_the_headers_without_the_body() {
        let served = serve(
            b"hello".to_vec(),
            "text/plain",
            Conditions {
                include_body: false,
                ..get()
            },
        );
        assert_eq!(served.status, 200);
        assert!(served.body.is_empty());
        assert_eq!(header(&served, "content-type"), Some("text/plain"));
    }
}
