//! The browser editor served at `/`: CodeMirror 6 + y-codemirror.next +
//! y-websocket against this relay's Yjs rooms. Built from `web/editor`
//! (`npm ci && npm run build`, esbuild from the checked-in lockfile) and
//! embedded, so running the relay needs no npm.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The page.
const INDEX: &str = include_str!("../../../../web/editor/index.html");
/// The bundle (`web/editor/dist/editor.js`).
const BUNDLE: &str = include_str!("../../../../web/editor/dist/editor.js");

pub(super) async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

pub(super) async fn bundle() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        BUNDLE,
    )
        .into_response()
}
