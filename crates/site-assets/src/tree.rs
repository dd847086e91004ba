//! The files under a directory, each named by its path below it as a URL path names it
//! (`/api/openapi.json`), which is how `site::file_path` names what a request asks for. Shared
//! by the build script, which embeds them, and the tests, which check that it did.

use std::io;
use std::path::{Path, PathBuf};

/// Every file under `dir`, at any depth, as `(url path, file)`, sorted by url path.
pub fn files(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    collect(dir, "", &mut found)?;
    found.sort();
    Ok(found)
}

fn collect(dir: &Path, prefix: &str, found: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().into_string().map_err(|name| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name:?} in {} is not UTF-8", dir.display()),
            )
        })?;
        let url_path = format!("{prefix}/{name}");
        if entry.path().is_dir() {
            collect(&entry.path(), &url_path, found)?;
        } else {
            found.push((url_path, entry.path()));
        }
    }
    Ok(())
}
