//! Pages: escaping text into them, fingerprinting their asset links, compressing them.

use std::io::Write;

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, safe in element content and in quoted
/// attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The extensions of files a page links as assets (stylesheets, scripts, images).
const ASSET_EXTENSIONS: &[&str] = &[".css", ".js", ".mjs", ".svg", ".png", ".ico", ".webp"];

/// Rewrites every `href="/x.css"` and `src="/x.js"` (site-absolute, no query) in `html` to
/// `"/x.css?v=<etag>"`, with the ETag `etag_of` gives for that path (without its quotes). Links
/// `etag_of` knows nothing of are left alone.
pub fn fingerprint_html(html: &str, etag_of: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    while let Some(start) = next_link(rest) {
        let (before, from_quote) = rest.split_at(start);
        out.push_str(before);
        // `from_quote` starts at the opening quote of a `/...` URL.
        let Some(end) = from_quote[1..].find('"') else {
            out.push_str(from_quote);
            return out;
        };
        let url = &from_quote[1..=end];
        let is_asset = !url.contains('?')
            && !url.starts_with("//")
            && ASSET_EXTENSIONS.iter().any(|ext| url.ends_with(ext));
        match etag_of(url).filter(|_| is_asset) {
            Some(etag) => out.push_str(&format!("\"{url}?v={}\"", etag.trim_matches('"'))),
            None => out.push_str(&format!("\"{url}\"")),
        }
        rest = &from_quote[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The position of the opening quote of the next `href="/` or `src="/`.
fn next_link(html: &str) -> Option<usize> {
    ["href=\"/", "src=\"/"]
        .iter()
        .filter_map(|pattern| html.find(pattern).map(|at| at + pattern.len() - 2))
        .min()
}

/// Whether an `Accept-Encoding` header admits gzip (and does not refuse it with `q=0`).
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let refused = parts.any(|param| {
            param
                .strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// `bytes` gzip-compressed at a fast level, for what is compressed per response.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    compress(bytes, flate2::Compression::fast())
}

/// `bytes` gzip-compressed as small as gzip makes them, for what is compressed once, when the
/// components are built.
pub fn gzip_best(bytes: &[u8]) -> Vec<u8> {
    compress(bytes, flate2::Compression::best())
}

fn compress(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
    // Writing to a Vec cannot fail.
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .expect("gzip into memory")
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            escape_html(r#"<b>"Tom" & 'Jerry'</b>"#),
            "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
        assert_eq!(escape_html("Concert, row 1"), "Concert, row 1");
    }

    #[test]
    fn asset_links_get_their_etag_and_other_links_stay() {
        let html = r#"<link rel="stylesheet" href="/app.css"><script src="/app.js" defer></script>
<a href="/tickets/new">Sell</a><img src="/logo.png"><a href="/x.css?v=1">x</a><a href="//cdn/x.js">"#;
        let out = fingerprint_html(html, |path| match path {
            "/app.css" => Some("\"aaaa\"".to_owned()),
            "/app.js" => Some("bbbb".to_owned()),
            "/tickets/new" => Some("cccc".to_owned()),
            _ => None,
        });
        assert_eq!(
            out,
            r#"<link rel="stylesheet" href="/app.css?v=aaaa"><script src="/app.js?v=bbbb" defer></script>
<a href="/tickets/new">Sell</a><img src="/logo.png"><a href="/x.css?v=1">x</a><a href="//cdn/x.js">"#
        );
    }

    #[test]
    fn gzip_is_accepted_unless_refused() {
        for header in [
            "gzip",
            "gzip, deflate, br",
            "br;q=1.0, gzip;q=0.8",
            "*",
            "GZIP",
        ] {
            assert!(accepts_gzip(header), "{header}");
        }
        for header in ["", "br", "identity", "gzip;q=0", "deflate, gzip;q=0.0"] {
            assert!(!accepts_gzip(header), "{header}");
        }
    }

    #[test]
    fn gzip_output_decompresses_to_the_input_at_either_level() {
        let text = "tickets ".repeat(1000);
        for compressed in [gzip(text.as_bytes()), gzip_best(text.as_bytes())] {
            assert!(compressed.len() < text.len() / 10);
            let mut back = String::new();
            flate2::read::GzDecoder::new(compressed.as_slice())
                .read_to_string(&mut back)
                .expect("valid gzip");
            assert_eq!(back, text);
        }
    }
}
