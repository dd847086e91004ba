//! Which file a request path names, and the headers that describe it.

use std::fmt;

/// The file served for a directory, and for a path that ends in `/`.
pub const INDEX: &str = "index.html";

/// Why a request path cannot name a file.
#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded path is not UTF-8.
    NotUtf8,
    /// A `..` segment, or a segment that decodes to something containing `/`, `\` or NUL.
    Forbidden,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadEscape => "malformed percent escape",
            Self::NotUtf8 => "path is not UTF-8",
            Self::Forbidden => "path leaves the site root",
        })
    }
}

/// Maps the path under the component's route (Spin's `spin-path-info`, still percent-encoded) to
/// an absolute path in the component's filesystem.
///
/// Each segment is decoded on its own, so an encoded `%2F` cannot join two segments and an
/// encoded `%2E%2E` is caught like a literal `..`. Empty and `.` segments are dropped. A path that
/// is empty or ends in `/` names the directory's [`INDEX`].
pub fn file_path(path_info: &str) -> Result<String, PathError> {
    let mut file = String::new();
    for raw in path_info.split('/') {
        let segment = percent_decode(raw)?;
        match segment.as_str() {
            "" | "." => {}
            ".." => return Err(PathError::Forbidden),
            s if s.contains(['/', '\\', '\0']) => return Err(PathError::Forbidden),
            s => {
                file.push('/');
                file.push_str(s);
            }
        }
    }
    if path_info.is_empty() || path_info.ends_with('/') {
        file.push('/');
        file.push_str(INDEX);
    }
    Ok(file)
}

/// Strictly decodes `%XX` escapes; unlike a query string, `+` is a literal plus sign in a path.
fn percent_decode(segment: &str) -> Result<String, PathError> {
    let input = segment.as_bytes();
    let mut output = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hex = input.get(i + 1..i + 3).ok_or(PathError::BadEscape)?;
            let high = hex_value(hex[0]).ok_or(PathError::BadEscape)?;
            let low = hex_value(hex[1]).ok_or(PathError::BadEscape)?;
            output.push(high << 4 | low);
            i += 3;
        } else {
            output.push(input[i]);
            i += 1;
        }
    }
    String::from_utf8(output).map_err(|_| PathError::NotUtf8)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn extension(path: &str) -> Option<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
}

/// The `Content-Type` for a file, chosen by its extension.
pub fn content_type(path: &str) -> &'static str {
    match extension(path).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("ico") => "image/x-icon",
        Some("webp") => "image/webp",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// An asset asked for by its fingerprinted URL (`?v=` and its current ETag) never changes under
/// that URL, so it is cached for a year; everything else (pages above all) is revalidated on
/// every use, so a new deployment shows at once and an unchanged file costs a 304.
pub fn cache_control(fingerprinted: bool) -> &'static str {
    if fingerprinted {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

/// Whether `content_type` is text worth compressing.
pub fn is_compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("image/svg")
}

/// A strong entity tag for `contents`: the 64-bit FNV-1a hash as 16 hex digits, quoted.
pub fn etag(contents: &[u8]) -> String {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = contents.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    format!("\"{hash:016x}\"")
}

/// Whether an `If-None-Match` header value matches `etag`. The comparison is weak (RFC 9110
/// §13.1.2): a `W/` prefix is ignored, and `*` matches any current file.
pub fn if_none_match(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_paths_under_the_route_to_files() {
        let cases = [
            ("", "/index.html"),
            ("/", "/index.html"),
            ("/app.css", "/app.css"),
            ("/js/app.js", "/js/app.js"),
            ("/docs/", "/docs/index.html"),
            ("//js//app.js", "/js/app.js"),
            ("/./app.css", "/app.css"),
            ("/a%20b.txt", "/a b.txt"),
            ("/c++.txt", "/c++.txt"),
            ("/caf%C3%A9.html", "/café.html"),
        ];
        for (path_info, expected) in cases {
            assert_eq!(file_path(path_info).as_deref(), Ok(expected), "{path_info}");
        }
    }

    #[test]
    fn rejects_paths_that_could_leave_the_site_root_or_are_malformed() {
        let cases = [
            ("/..", PathError::Forbidden),
            ("/../etc/passwd", PathError::Forbidden),
            ("/js/../../x", PathError::Forbidden),
            ("/%2e%2e/x", PathError::Forbidden),
            ("/%2E%2E", PathError::Forbidden),
            ("/a%2Fb", PathError::Forbidden),
            ("/a%5Cb", PathError::Forbidden),
            ("/a%00b", PathError::Forbidden),
            ("/100%", PathError::BadEscape),
            ("/%4", PathError::BadEscape),
            ("/%zz", PathError::BadEscape),
            ("/%C3", PathError::NotUtf8),
        ];
        for (path_info, expected) in cases {
            assert_eq!(file_path(path_info), Err(expected), "{path_info}");
        }
    }

    #[test]
    fn chooses_the_content_type_by_extension_ignoring_case() {
        let cases = [
            ("/index.html", "text/html; charset=utf-8"),
            ("/INDEX.HTML", "text/html; charset=utf-8"),
            ("/app.css", "text/css; charset=utf-8"),
            ("/app.js", "text/javascript; charset=utf-8"),
            ("/module.mjs", "text/javascript; charset=utf-8"),
            ("/data.json", "application/json"),
            ("/app.js.map", "application/json"),
            ("/logo.svg", "image/svg+xml"),
            ("/logo.png", "image/png"),
            ("/photo.jpg", "image/jpeg"),
            ("/photo.jpeg", "image/jpeg"),
            ("/anim.gif", "image/gif"),
            ("/favicon.ico", "image/x-icon"),
            ("/photo.webp", "image/webp"),
            ("/robots.txt", "text/plain; charset=utf-8"),
            ("/font.woff2", "font/woff2"),
            ("/archive.tar.gz", "application/octet-stream"),
            ("/README", "application/octet-stream"),
            ("/dir.d/README", "application/octet-stream"),
        ];
        for (path, expected) in cases {
            assert_eq!(content_type(path), expected, "{path}");
        }
    }

    #[test]
    fn text_is_compressed_and_images_are_not() {
        assert!(is_compressible(content_type("a.css")));
        assert!(is_compressible(content_type("a.svg")));
        assert!(!is_compressible(content_type("a.png")));
    }

    #[test]
    fn fingerprinted_urls_are_cached_for_good_and_the_rest_revalidated() {
        assert_eq!(cache_control(true), "public, max-age=31536000, immutable");
        assert_eq!(cache_control(false), "no-cache");
    }

    #[test]
    fn etag_is_the_quoted_fnv1a_64_hash() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(etag(b""), "\"cbf29ce484222325\"");
        assert_eq!(etag(b"a"), "\"af63dc4c8601ec8c\"");
        assert_eq!(etag(b"foobar"), "\"85944171f73967e8\"");
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_wildcards() {
        let tag = "\"0123456789abcdef\"";
        assert!(if_none_match(tag, tag));
        assert!(if_none_match("\"other\", \"0123456789abcdef\"", tag));
        assert!(if_none_match("W/\"0123456789abcdef\"", tag));
        assert!(if_none_match("*", tag));
        assert!(!if_none_match("\"other\"", tag));
        assert!(!if_none_match("0123456789abcdef", tag));
        assert!(!if_none_match("", tag));
    }
}
