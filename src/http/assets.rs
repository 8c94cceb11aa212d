//! The dashboard's static files, embedded in the binary and served without authentication.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{web, HttpResponse, ResponseError};

use crate::error::ApiError;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Declares an embedded file of static/ with its content type.
macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_str!(concat!("../../static/", $path)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("keys.js", "text/javascript; charset=utf-8"),
    asset!("chain.js", "text/javascript; charset=utf-8"),
    asset!("capacity.js", "text/javascript; charset=utf-8"),
    asset!("aliases.js", "text/javascript; charset=utf-8"),
    asset!("clients.js", "text/javascript; charset=utf-8"),
    asset!("budgets.js", "text/javascript; charset=utf-8"),
    asset!("playground.js", "text/javascript; charset=utf-8"),
    asset!("analytics.js", "text/javascript; charset=utf-8"),
];

/// `GET /`: the dashboard page.
pub(super) async fn index() -> HttpResponse {
    serve("index.html")
}

/// `GET /static/{file}`: one embedded file.
pub(super) async fn file(name: web::Path<String>) -> HttpResponse {
    serve(&name)
}

fn serve(path: &str) -> HttpResponse {
    match ASSETS.iter().find(|a| a.path == path) {
        Some(asset) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, asset.content_type))
            .insert_header((CACHE_CONTROL, "no-cache"))
            .insert_header(("x-content-type-options", "nosniff"))
            .insert_header((
                "content-security-policy",
                "default-src 'self'; frame-ancestors 'none'",
            ))
            .body(asset.body),
        None => ApiError::not_found("No such dashboard file.").error_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_under_static_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                ASSETS.iter().any(|a| a.path == name),
                "static/{name} is not embedded in ASSETS"
            );
        }
    }
}
