//! Renders the browser client into `OUT_DIR` once, when the crate is built: every file of
//! `static/` and every page of `templates/pages/` (its template in `templates/layout.html`, its
//! asset links fingerprinted), each as its plain bytes and, when `site` would compress it, its
//! gzip bytes, plus `site.rs`, the table of their `site::Resource`s that `src/lib.rs` includes.
//! The bytes are copied into `OUT_DIR` rather than included from the workspace, so an edit
//! between this script and the compiler cannot pair one version's bytes with another's ETag.

#[path = "src/tree.rs"]
mod tree;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

const HTML: &str = "text/html; charset=utf-8";

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = PathBuf::from(std::env::var("OUT_DIR").context("cargo sets OUT_DIR")?);
    let static_dir = root.join("static");
    let templates = root.join("templates");

    let assets = read_assets(&static_dir)?;
    let pages = render_pages(&templates, &assets)?;
    let mut table = String::new();
    write_table(
        &mut table,
        "ASSETS",
        "Every file of `static/`, by its path below it",
        &assets,
        &out.join("static"),
    )?;
    write_table(
        &mut table,
        "PAGES",
        "Every page of `templates/pages/`, by name",
        &pages,
        &out.join("pages"),
    )?;
    std::fs::write(out.join("site.rs"), table).context("writing site.rs")?;

    // A directory makes cargo rerun this for a file added or removed anywhere under it, each file
    // for an edit; cargo also records them all as sources of the components built with us.
    for dir in [&static_dir, &templates] {
        println!("cargo:rerun-if-changed={}", dir.display());
        for (_, file) in tree::files(dir).with_context(|| format!("listing {}", dir.display()))? {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    }
    Ok(())
}

/// Every file of `static/`, by its path below it (`/app.css`), tagged.
fn read_assets(static_dir: &Path) -> Result<BTreeMap<String, site::Contents>> {
    let files =
        tree::files(static_dir).with_context(|| format!("listing {}", static_dir.display()))?;
    files
        .into_iter()
        .map(|(path, file)| {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let contents = site::Contents::new(bytes, site::content_type(&path));
            Ok((path, contents))
        })
        .collect()
}

/// Every page of `templates/pages/` (`<name>.html`), by name: its template in the layout, with
/// its links to `assets` fingerprinted by their ETags, exactly as a page is served from files.
fn render_pages(
    templates: &Path,
    assets: &BTreeMap<String, site::Contents>,
) -> Result<BTreeMap<String, site::Contents>> {
    let read = |file: &Path| {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    };
    let layout = read(&templates.join("layout.html"))?;
    let pages_dir = templates.join("pages");
    let files =
        tree::files(&pages_dir).with_context(|| format!("listing {}", pages_dir.display()))?;
    let mut pages = BTreeMap::new();
    for (path, file) in files {
        let Some(name) = path
            .strip_prefix('/')
            .and_then(|name| name.strip_suffix(".html"))
        else {
            continue;
        };
        let html = site::page(&layout, name, &read(&file)?);
        let html = site::fingerprint_html(&html, |asset| {
            assets
                .get(asset)
                .map(|contents| contents.resource().plain.etag.to_owned())
        });
        pages.insert(
            name.to_owned(),
            site::Contents::new(html.into_bytes(), HTML),
        );
    }
    Ok(pages)
}

/// Writes each resource's bytes under `dir` and appends to `table` a sorted static slice named
/// `name` of `(key, site::Resource)`, whose bytes are `include_bytes!` of those files.
fn write_table(
    table: &mut String,
    name: &str,
    doc: &str,
    resources: &BTreeMap<String, site::Contents>,
    dir: &Path,
) -> Result<()> {
    writeln!(
        table,
        "/// {doc}, in byte order (looked up by binary search)."
    )?;
    writeln!(
        table,
        "static {name}: &[(&str, site::Resource<'static>)] = &["
    )?;
    for (key, contents) in resources {
        let base = dir.join(key.trim_start_matches('/'));
        writeln!(table, "    ({key:?}, {}),", embed(&base, contents)?)?;
    }
    writeln!(table, "];")?;
    Ok(())
}

/// Writes `contents` to `base.plain` (and its gzip to `base.gz`) and returns the
/// `site::Resource` expression that includes them.
fn embed(base: &Path, contents: &site::Contents) -> Result<String> {
    let resource = contents.resource();
    let plain = write(&base.with_added_extension("plain"), resource.plain.bytes)?;
    let gzip = match resource.gzip {
        Some(gzip) => {
            let compressed = site::gzip_best(resource.plain.bytes);
            let compressed = write(&base.with_added_extension("gz"), &compressed)?;
            format!(
                "Some(site::Gzip {{ etag: {:?}, bytes: Some(include_bytes!({compressed:?})) }})",
                gzip.etag
            )
        }
        None => "None".to_owned(),
    };
    Ok(format!(
        "site::Resource {{ content_type: {:?}, plain: site::Representation {{ bytes: include_bytes!({plain:?}), etag: {:?} }}, gzip: {gzip} }}",
        resource.content_type, resource.plain.etag
    ))
}

/// Writes `bytes` to `file`, making its directory, and returns the file's path as a string.
fn write(file: &Path, bytes: &[u8]) -> Result<String> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(file, bytes).with_context(|| format!("writing {}", file.display()))?;
    file.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", file.display()))
}
