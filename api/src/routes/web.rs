//! The dashboard (`web/`): its built files, served from `web.dir` (default `web/dist`).
//!
//! `cargo build` never needs npm: the files are looked for at each request, so a build
//! made while the server runs is served at once, and while there is none `/` says how
//! to make one. Hashed files under `assets/` are cached for a year (a missing one is a
//! 404); every other path answers its file or `index.html` (the app routes in the
//! browser), revalidated at each load. Every answer carries the app's
//! Content-Security-Policy.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// What the app may load: its own scripts and styles (charts set inline styles), and
/// the API on the same origin (HTTP and WebSocket). No framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Every path no other route takes: a file of the build, or the app's `index.html`.
pub async fn serve(dir: PathBuf, request: Request<Body>) -> Response {
    let index = dir.join("index.html");
    if !index.is_file() {
        return not_built(&dir);
    }
    // A missing asset is a 404 (a stale page asking for an old build's file), not the
    // app's page in its place.
    let hashed = request.uri().path().starts_with("/assets/");
    let served = if hashed {
        ServeDir::new(&dir).oneshot(request).await
    } else {
        ServeDir::new(&dir)
            .fallback(ServeFile::new(&index))
            .oneshot(request)
            .await
    };
    let mut response = match served {
        Ok(response) => response.into_response(),
        Err(infallible) => match infallible {},
    };
    let cache = if hashed && response.status() == StatusCode::OK {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `/` before the dashboard is built: how to build it, and where GraphiQL went.
fn not_built(dir: &Path) -> Response {
    let dir = html_escape(&dir.display().to_string());
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>coinfold: the dashboard is not built</title></head><body>\
         <h1>The dashboard is not built</h1>\
         <p>coinfold serves the web app from <code>{dir}</code> (setting <code>web.dir</code>, \
         <code>COINFOLD_WEB__DIR</code>), and there is no <code>index.html</code> there.</p>\
         <p>Build it from the repository root with <code>cd web &amp;&amp; npm ci &amp;&amp; \
         npm run build</code> (<code>scripts/demo.sh</code> does it for you); it is served \
         at once, no restart needed.</p>\
         <p>Meanwhile: GraphiQL at <a href=\"/graphiql\">/graphiql</a>, the API at \
         <code>POST /graphql</code> and <code>/graphql/ws</code>.</p></body></html>"
    );
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
