//! The UI's files, embedded at build time from `web/` (no npm, no build
//! step: plain HTML, CSS and JavaScript modules), served with their
//! content type, an ETag and `Cache-Control: no-cache` (the browser
//! revalidates, and gets 304 while the binary is the same), and headers
//! that allow only the UI's own scripts, styles and requests.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;

/// Name, content type and bytes of every file.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../../web/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/style.css"),
    ),
    ("app.js", JS, include_bytes!("../../../web/app.js")),
    ("api.js", JS, include_bytes!("../../../web/api.js")),
    ("dom.js", JS, include_bytes!("../../../web/dom.js")),
    ("flags.js", JS, include_bytes!("../../../web/flags.js")),
    ("flag.js", JS, include_bytes!("../../../web/flag.js")),
    ("edit.js", JS, include_bytes!("../../../web/edit.js")),
    ("rules.js", JS, include_bytes!("../../../web/rules.js")),
    ("audit.js", JS, include_bytes!("../../../web/audit.js")),
    ("keys.js", JS, include_bytes!("../../../web/keys.js")),
    (
        "segments.js",
        JS,
        include_bytes!("../../../web/segments.js"),
    ),
    (
        "playground.js",
        JS,
        include_bytes!("../../../web/playground.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../web/favicon.svg"),
    ),
];

const JS: &str = "text/javascript; charset=utf-8";

/// Scripts, styles, images and requests from the UI's own origin only: no
/// inline script or style, no framing, no plugins, forms post nowhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// `GET /`: browsers go to the UI.
pub(super) async fn root() -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/ui/"))],
    )
        .into_response()
}

/// `GET /ui/`: the page.
pub(super) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{file}`: a script, the style sheet, the icon.
pub(super) async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return ApiError::not_found(format!("the UI has no file `{name}`")).into_response();
    };
    let (_, content_type, _) = FILES[i];
    let etag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], FILES[i].2).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// Each file's ETag: a hash of its bytes, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, _, bytes)| {
                let digest = crate::keys::digest_bytes(bytes);
                format!("\"{}\"", crate::keys::hex(&digest[..12]))
            })
            .collect()
    })
}
