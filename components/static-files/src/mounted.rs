//! The browser client read from mounted files, as a build with the `files` feature serves it:
//! spin.toml then mounts `static/` at `/static` and `templates/` at `/templates`, and every
//! request reads its file (a page: the layout, its template and the assets it links, to
//! fingerprint them) and hashes it. The default build serves what `site-assets` embedded instead,
//! which is the same bytes and tags made once; this stays for whoever would rather edit the
//! files under a running app than rebuild.

use std::io::ErrorKind;
use std::path::Path;

use crate::Target;

/// Where spin.toml mounts the directories, in the component's filesystem.
pub const MOUNT_ROOT: &str = "/";

/// What `target` names under `root` (which holds `static/` and `templates/`), if it exists. Any
/// failure to read counts as "no such file": the mount is a read-only snapshot, so there is
/// nothing else a client could do about it.
pub fn find(root: &Path, target: &Target) -> Option<site::Contents> {
    match target {
        Target::Page(name) => read_page(root, name)
            .map(|html| site::Contents::new(html.into_bytes(), "text/html; charset=utf-8")),
        Target::File(path) => read_file(&root.join("static"), path),
    }
}

/// The page `name`, its stylesheet and script links fingerprinted.
fn read_page(root: &Path, name: &str) -> Option<String> {
    let templates = root.join("templates");
    let layout = std::fs::read_to_string(templates.join("layout.html")).ok()?;
    let page = std::fs::read_to_string(templates.join(format!("pages/{name}.html"))).ok()?;
    let html = site::page(&layout, name, &page);
    Some(site::fingerprint_html(&html, |asset| {
        std::fs::read(in_dir(&root.join("static"), asset))
            .ok()
            .map(|bytes| site::etag(&bytes))
    }))
}

/// The file at `path` (`/app.css`) under `static_dir`, or the `index.html` inside it if it is a
/// directory, typed by the name of the file actually read.
fn read_file(static_dir: &Path, path: &str) -> Option<site::Contents> {
    let file = in_dir(static_dir, path);
    let (path, bytes) = match std::fs::read(&file) {
        Ok(bytes) => (path.to_owned(), bytes),
        Err(e) if e.kind() == ErrorKind::IsADirectory || file.is_dir() => {
            let index = format!("{}/{}", path.trim_end_matches('/'), site::INDEX);
            let bytes = std::fs::read(in_dir(static_dir, &index)).ok()?;
            (index, bytes)
        }
        Err(_) => return None,
    };
    Some(site::Contents::new(bytes, site::content_type(&path)))
}

/// The file a site path (`/api/openapi.json`, as `site::file_path` makes it) names in `dir`.
fn in_dir(dir: &Path, path: &str) -> std::path::PathBuf {
    dir.join(path.trim_start_matches('/'))
}
