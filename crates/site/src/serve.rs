//! One resource's answer: its ETag, caching, compression and the 304 when the client has it.
//!
//! A [`Resource`] is every representation the resource can be sent as, already tagged: the
//! embedded assets (`site-assets`) are tagged and compressed when the component is built, so a
//! request only chooses among them. What is made per request (the home page, a file read from a
//! mount) becomes one through [`Contents`], which hashes it once and compresses it only when gzip
//! is the answer.

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

/// One representation of a resource: its bytes and the ETag that names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Representation<'a> {
    pub bytes: &'a [u8],
    pub etag: &'a str,
}

/// A resource's gzip representation. Its ETag is the plain one's with `-gz` ([`gzip_etag`]), so
/// it is known without compressing; its bytes are there when they were compressed ahead of time,
/// and `None` when they are compressed only if they are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gzip<'a> {
    pub etag: &'a str,
    pub bytes: Option<&'a [u8]>,
}

/// Everything [`serve`] chooses from to answer for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource<'a> {
    pub content_type: &'a str,
    pub plain: Representation<'a>,
    /// `None` when compressing does not pay ([`compresses`]).
    pub gzip: Option<Gzip<'a>>,
}

/// An answer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Whether `len` bytes of `content_type` are worth a gzip representation: text of 1 KiB or more.
pub fn compresses(content_type: &str, len: usize) -> bool {
    is_compressible(content_type) && len >= MIN_GZIP_BYTES
}

/// The ETag of the gzip representation of the resource whose plain ETag is `plain`: each
/// representation has its own tag, so a cache never answers a client with the other's bytes.
pub fn gzip_etag(plain: &str) -> String {
    format!("{}-gz\"", plain.trim_end_matches('"'))
}

/// A resource made at run time from its bytes: a rendered page, or a file read per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    content_type: &'static str,
    bytes: Vec<u8>,
    etag: String,
    gzip_etag: Option<String>,
}

impl Contents {
    /// Tags `bytes` of `content_type`, and its gzip representation if it would have one.
    pub fn new(bytes: Vec<u8>, content_type: &'static str) -> Self {
        let etag = etag(&bytes);
        let gzip_etag = compresses(content_type, bytes.len()).then(|| gzip_etag(&etag));
        Self {
            content_type,
            bytes,
            etag,
            gzip_etag,
        }
    }

    /// Its representations, the gzip one to be compressed if it is sent.
    pub fn resource(&self) -> Resource<'_> {
        Resource {
            content_type: self.content_type,
            plain: Representation {
                bytes: &self.bytes,
                etag: &self.etag,
            },
            gzip: self
                .gzip_etag
                .as_deref()
                .map(|etag| Gzip { etag, bytes: None }),
        }
    }
}

/// The answer for `resource`: 200 (gzipped when the client accepts it and the resource has a
/// gzip representation) or a bodiless 304 when the client's copy is current. Every answer
/// carries its representation's ETag, `Vary: accept-encoding`, and caching: a year for a
/// fingerprinted URL whose fingerprint is current, revalidation for everything else.
pub fn serve(resource: &Resource<'_>, request: Conditions<'_>) -> Served {
    let fingerprinted = request
        .query
        .split('&')
        .any(|pair| pair.strip_prefix("v=") == Some(resource.plain.etag.trim_matches('"')));
    let gzipped = resource
        .gzip
        .filter(|_| accepts_gzip(request.accept_encoding));
    let tag = gzipped.map_or(resource.plain.etag, |gzip| gzip.etag);
    let mut headers = vec![
        ("etag", tag.to_owned()),
        ("cache-control", cache_control(fingerprinted).to_owned()),
        ("vary", "accept-encoding".to_owned()),
    ];
    if request
        .if_none_match
        .is_some_and(|header| if_none_match(header, tag))
    {
        return Served {
            status: 304,
            headers,
            body: Vec::new(),
        };
    }
    headers.push(("content-type", resource.content_type.to_owned()));
    if gzipped.is_some() {
        headers.push(("content-encoding", "gzip".to_owned()));
    }
    let body = match gzipped {
        _ if !request.include_body => Vec::new(),
        None => resource.plain.bytes.to_vec(),
        Some(Gzip {
            bytes: Some(bytes), ..
        }) => bytes.to_vec(),
        Some(Gzip { bytes: None, .. }) => gzip(resource.plain.bytes),
    };
    Served {
        status: 200,
        headers,
        body,
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

    fn serve_made(contents: &[u8], content_type: &'static str, request: Conditions<'_>) -> Served {
        serve(
            &Contents::new(contents.to_vec(), content_type).resource(),
            request,
        )
    }

    #[test]
    fn a_file_is_served_with_its_tag_and_revalidated() {
        let served = serve_made(b"body{}", "text/css; charset=utf-8", get());
        assert_eq!(served.status, 200);
        assert_eq!(served.body, b"body{}");
        assert_eq!(header(&served, "cache-control"), Some("no-cache"));
        assert_eq!(
            header(&served, "content-encoding"),
            None,
            "too small to compress"
        );
        let tag = header(&served, "etag").expect("a tag").to_owned();
        let again = serve_made(
            b"body{}",
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
        let contents = b"let x = 1;";
        let tag = etag(contents);
        let query = format!("v={}", tag.trim_matches('"'));
        let current = serve_made(
            contents,
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
        let stale = serve_made(
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
        let plain = serve_made(&page, "text/html; charset=utf-8", get());
        let zipped = serve_made(
            &page,
            "text/html; charset=utf-8",
            Conditions {
                accept_encoding: "gzip, br",
                ..get()
            },
        );
        assert_eq!(header(&zipped, "content-encoding"), Some("gzip"));
        assert!(zipped.body.len() < page.len() / 10);
        assert_eq!(
            header(&zipped, "etag"),
            Some(gzip_etag(&etag(&page)).as_str())
        );
        assert_ne!(header(&plain, "etag"), header(&zipped, "etag"));
        let image = serve_made(
            &[0; 4096],
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
        let page = "<li>ticket</li>".repeat(200).into_bytes();
        for accept_encoding in ["", "gzip"] {
            let request = Conditions {
                accept_encoding,
                ..get()
            };
            let got = serve_made(&page, "text/html", request);
            let head = serve_made(
                &page,
                "text/html",
                Conditions {
                    include_body: false,
                    ..request
                },
            );
            assert_eq!(head.status, 200);
            assert!(head.body.is_empty());
            assert_eq!(head.headers, got.headers, "{accept_encoding}");
        }
    }

    /// A resource as `site-assets` embeds it: both representations made ahead of time.
    fn precompressed<'a>(
        plain: &'a [u8],
        compressed: &'a [u8],
        tags: &'a [String; 2],
    ) -> Resource<'a> {
        Resource {
            content_type: "text/css; charset=utf-8",
            plain: Representation {
                bytes: plain,
                etag: &tags[0],
            },
            gzip: Some(Gzip {
                etag: &tags[1],
                bytes: Some(compressed),
            }),
        }
    }

    #[test]
    fn precompressed_bytes_are_sent_as_they_are_and_revalidated_by_their_own_tag() {
        let plain = b"body { color: red }".repeat(100);
        let compressed = b"gzip made at build time";
        let tag = etag(&plain);
        let tags = [tag.clone(), gzip_etag(&tag)];
        let resource = precompressed(&plain, compressed, &tags);
        let gzip_request = Conditions {
            accept_encoding: "gzip",
            ..get()
        };
        let zipped = serve(&resource, gzip_request);
        assert_eq!(zipped.body, compressed);
        assert_eq!(header(&zipped, "content-encoding"), Some("gzip"));
        assert_eq!(serve(&resource, get()).body, plain);

        let fresh = serve(
            &resource,
            Conditions {
                if_none_match: Some(&tags[1]),
                ..gzip_request
            },
        );
        assert_eq!((fresh.status, fresh.body.len()), (304, 0));
        assert_eq!(header(&fresh, "etag"), Some(tags[1].as_str()));
        let other_representation = serve(
            &resource,
            Conditions {
                if_none_match: Some(&tags[0]),
                ..gzip_request
            },
        );
        assert_eq!(other_representation.status, 200);
    }

    #[test]
    fn a_fingerprint_names_the_plain_tag_whichever_representation_is_sent() {
        let plain = b"body { color: red }".repeat(100);
        let tag = etag(&plain);
        let tags = [tag.clone(), gzip_etag(&tag)];
        let query = format!("x=1&v={}", tag.trim_matches('"'));
        let served = serve(
            &precompressed(&plain, b"", &tags),
            Conditions {
                query: &query,
                accept_encoding: "gzip",
                ..get()
            },
        );
        assert_eq!(
            header(&served, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
    }
}
