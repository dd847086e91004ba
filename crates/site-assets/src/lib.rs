//! The browser client, embedded: every file of `static/` and every page of `templates/pages/`
//! (in `templates/layout.html`, its stylesheet and script linked by fingerprint), rendered,
//! tagged and gzipped by `build.rs` with the `site` crate when this crate is built. Serving one
//! is then a lookup and `site::serve`'s choice among ready representations: no file is read,
//! nothing is hashed or compressed per request.
//!
//! An edit under `static/` or `templates/` therefore needs a rebuild of what embeds them (the
//! `static-files` and `tickets` components), which their `watch` globs in `spin.toml` ask for.

#[cfg(test)]
mod tree;

include!(concat!(env!("OUT_DIR"), "/site.rs"));

/// The home page's template (`templates/pages/home.html` in the layout, its asset links
/// fingerprinted) with its `{{placeholders}}` for the tickets component to fill per request.
pub const HOME_TEMPLATE: &str = include_str!(concat!(env!("OUT_DIR"), "/pages/home.plain"));

/// The file of `static/` at `path` (as `site::file_path` gives it, `/app.css`), if there is one.
pub fn asset(path: &str) -> Option<&'static site::Resource<'static>> {
    find(ASSETS, path)
}

/// The page `name` (`templates/pages/<name>.html`), if there is one.
pub fn page(name: &str) -> Option<&'static site::Resource<'static>> {
    find(PAGES, name)
}

fn find(
    table: &'static [(&str, site::Resource<'static>)],
    key: &str,
) -> Option<&'static site::Resource<'static>> {
    table
        .binary_search_by(|(entry, _)| (*entry).cmp(key))
        .ok()
        .map(|at| &table[at].1)
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::path::{Path, PathBuf};

    use super::*;

    fn workspace_dir(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(name)
    }

    fn read(file: &Path) -> String {
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    }

    /// Every page template, as `(name, file)`.
    fn page_templates() -> Vec<(String, PathBuf)> {
        tree::files(&workspace_dir("templates/pages"))
            .expect("templates/pages")
            .into_iter()
            .filter_map(|(path, file)| {
                let name = path.strip_prefix('/')?.strip_suffix(".html")?;
                Some((name.to_owned(), file))
            })
            .collect()
    }

    /// The page `name` as static-files renders it from mounted files: its template in the
    /// layout, its links fingerprinted by hashing the files they name.
    fn rendered_from_files(name: &str, template: &Path) -> site::Contents {
        let layout = read(&workspace_dir("templates/layout.html"));
        let html = site::page(&layout, name, &read(template));
        let html = site::fingerprint_html(&html, |asset| {
            let bytes = std::fs::read(workspace_dir("static").join(&asset[1..])).ok()?;
            Some(site::etag(&bytes))
        });
        site::Contents::new(html.into_bytes(), "text/html; charset=utf-8")
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .expect("valid gzip");
        plain
    }

    /// `embedded` has the type, bytes and ETags of `made`, and its gzip decompresses to its bytes.
    fn assert_same_representations(embedded: &site::Resource<'_>, made: &site::Contents) {
        let made = made.resource();
        assert_eq!(embedded.content_type, made.content_type);
        assert_eq!(embedded.plain, made.plain);
        assert_eq!(
            embedded.gzip.map(|gzip| gzip.etag),
            made.gzip.map(|gzip| gzip.etag)
        );
        if let Some(gzip) = embedded.gzip {
            let compressed = gzip.bytes.expect("compressed when built");
            assert_eq!(gunzip(compressed), embedded.plain.bytes);
        }
    }

    #[test]
    fn every_file_of_static_is_embedded_as_it_is_served_from_files() {
        let files = tree::files(&workspace_dir("static")).expect("static/");
        assert!(files.iter().any(|(path, _)| path == "/app.js"));
        for (path, file) in &files {
            let embedded = asset(path).unwrap_or_else(|| panic!("{path} is not embedded"));
            let bytes = std::fs::read(file).expect("readable");
            let made = site::Contents::new(bytes, site::content_type(path));
            assert_same_representations(embedded, &made);
        }
        assert_eq!(ASSETS.len(), files.len(), "nothing else is embedded");
    }

    #[test]
    fn every_page_is_embedded_as_it_is_rendered_from_files() {
        let templates = page_templates();
        assert!(templates.iter().any(|(name, _)| name == "signin"));
        for (name, file) in &templates {
            let embedded = page(name).unwrap_or_else(|| panic!("{name} is not embedded"));
            assert_same_representations(embedded, &rendered_from_files(name, file));
        }
        assert_eq!(PAGES.len(), templates.len(), "nothing else is embedded");
    }

    #[test]
    fn text_of_a_kilobyte_or_more_is_embedded_gzipped_and_the_rest_is_not() {
        for (key, resource) in ASSETS.iter().chain(PAGES) {
            let compresses = site::compresses(resource.content_type, resource.plain.bytes.len());
            assert_eq!(resource.gzip.is_some(), compresses, "{key}");
        }
        let script = asset("/app.js").and_then(|script| script.gzip);
        let compressed = script.and_then(|gzip| gzip.bytes).expect("app.js gzipped");
        assert!(compressed.len() * 2 < asset("/app.js").expect("app.js").plain.bytes.len());
    }

    #[test]
    fn the_fingerprints_in_every_page_are_the_embedded_assets_tags() {
        for (name, resource) in PAGES {
            let html = std::str::from_utf8(resource.plain.bytes).expect("UTF-8");
            let mut fingerprinted = Vec::new();
            for (at, _) in html.match_indices("?v=") {
                let url = &html[html[..at].rfind('"').expect("a quoted URL") + 1..at];
                let version = &html[at + 3..at + 3 + html[at + 3..].find('"').expect("closed")];
                let tag = asset(url)
                    .unwrap_or_else(|| panic!("{name} links {url}"))
                    .plain
                    .etag;
                assert_eq!(version, tag.trim_matches('"'), "{name}: {url}");
                fingerprinted.push(url);
            }
            assert!(
                fingerprinted.contains(&"/app.css") && fingerprinted.contains(&"/app.js"),
                "{name}: {fingerprinted:?}"
            );
        }
    }

    #[test]
    fn the_home_template_is_the_home_page_with_its_placeholders_left_to_fill() {
        let home = page("home").expect("the home page");
        assert_eq!(HOME_TEMPLATE.as_bytes(), home.plain.bytes);
        assert!(HOME_TEMPLATE.contains("{{tickets}}"), "{HOME_TEMPLATE}");
        assert!(!HOME_TEMPLATE.contains("{{main}}"), "{HOME_TEMPLATE}");
    }

    #[test]
    fn lookups_find_each_entry_and_nothing_else() {
        for table in [ASSETS, PAGES] {
            assert!(
                table.is_sorted_by_key(|(key, _)| *key),
                "binary search needs order"
            );
        }
        assert!(asset("/app.css").is_some());
        assert!(asset("app.css").is_none());
        assert!(asset("/missing.css").is_none());
        assert!(page("signin").is_some());
        assert!(page("signin.html").is_none());
    }

    fn header<'a>(served: &'a site::Served, name: &str) -> Option<&'a str> {
        served
            .headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    #[test]
    fn an_embedded_asset_is_revalidated_cached_by_fingerprint_and_answers_head() {
        let script = asset("/app.js").expect("app.js");
        let get = site::Conditions {
            accept_encoding: "gzip",
            include_body: true,
            ..site::Conditions::default()
        };
        let zipped = site::serve(script, get);
        assert_eq!(header(&zipped, "content-encoding"), Some("gzip"));
        assert_eq!(gunzip(&zipped.body), script.plain.bytes);
        let tag = header(&zipped, "etag").expect("a tag").to_owned();
        let fresh = site::serve(
            script,
            site::Conditions {
                if_none_match: Some(&tag),
                ..get
            },
        );
        assert_eq!((fresh.status, fresh.body.len()), (304, 0));

        let query = format!("v={}", script.plain.etag.trim_matches('"'));
        let fingerprinted = site::serve(
            script,
            site::Conditions {
                query: &query,
                ..get
            },
        );
        assert_eq!(
            header(&fingerprinted, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );

        let head = site::serve(
            script,
            site::Conditions {
                include_body: false,
                ..get
            },
        );
        assert_eq!((head.status, head.body.len()), (200, 0));
        assert_eq!(head.headers, zipped.headers);
    }
}
