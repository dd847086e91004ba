//! Serving the browser client, free of `spin_sdk` so it is tested natively. The `site-assets`
//! build script renders and tags `static/` and the pages of `templates/` with it when the
//! components are built, the `static-files` component serves them with it, and the tickets
//! component uses it to serve the home page it renders.
//!
//! - `asset`: which file a path names, content types, ETags, `If-None-Match`, caching;
//! - [`fingerprint_html`]: rewrites a page's links to its stylesheets and scripts to
//!   `/app.css?v=<etag>`, so those can be cached for good while the page is revalidated;
//! - [`page`] and [`fill`]: a page from `templates/layout.html` and its own template;
//! - [`serve`]: one resource's answer, with its ETag, caching, gzip and 304, from its
//!   [`Resource`]: representations tagged (and compressed) ahead of time, as `site-assets`
//!   embeds them, or [`Contents`] made per request;
//! - [`gzip`], [`gzip_best`] and [`accepts_gzip`]: compression for clients that ask for it;
//! - [`escape_html`]: text into HTML.

mod asset;
mod html;
mod layout;
mod serve;

pub use asset::{
    INDEX, PathError, cache_control, content_type, etag, file_path, if_none_match, is_compressible,
};
pub use html::{accepts_gzip, escape_html, fingerprint_html, gzip, gzip_best};
pub use layout::{fill, page};
pub use serve::{
    Conditions, Contents, Gzip, Representation, Resource, Served, compresses, gzip_etag, serve,
};
