//! The dashboard's static files, embedded in the binary and served without authentication.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{web, HttpResponse};

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../static/index.html"),
    },
    Asset {
        path: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../static/app.css"),
    },
    Asset {
        path: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../static/favicon.svg"),
    },
    Asset {
        path: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../static/api.js"),
    },
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../static/app.js"),
    },
    Asset {
        path: "keys.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../static/keys.js"),
    },
    Asset {
        path: "chain.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../static/chain.js"),
    },
    Asset {
        path: "playground.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../static/playground.js"),
    },
    Asset {
        path: "analytics.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../static/analytics.js"),
    },
];

/// Registers `/` and every embedded file.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(|| async { serve("index.html") }));
    cfg.route(
        "/static/{file}",
        web::get().to(|file: web::Path<String>| async move { serve(&file) }),
    );
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
        None => HttpResponse::NotFound().finish(),
    }
}
