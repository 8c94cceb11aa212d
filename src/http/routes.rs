//! The one table of routes. `configure` registers exactly this table and the request guard and the route
//! audit read it, so a route cannot be added without stating who may call it.

use actix_web::http::Method;
use actix_web::web;

use super::{
    admin, aliases, assets, chat, clients, embeddings, live, messages, metrics, models, responses,
    signin,
};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the liveness check and the dashboard's static files.
    Public,
    /// Only a caller presenting the unified key.
    UnifiedKey,
    /// The unified key, or `METRICS_TOKEN` when one is set (so a scraper need not hold the admin key).
    MetricsToken,
    /// Only the one-time code of a first-run sign-in link (which answers the unified key).
    SignInCode,
}

/// One registered route, as the audit and the guard see it.
#[derive(Clone, Copy, Debug)]
pub struct RouteInfo {
    /// HTTP method.
    pub method: &'static str,
    /// actix path pattern; `{name}` matches one path segment.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// Declares the route table and its registration from one list.
macro_rules! routes {
    ($($method:ident $path:literal $access:ident => $handler:path;)*) => {
        /// Every route the server registers, in registration order.
        pub const ROUTES: &[RouteInfo] = &[
            $(RouteInfo { method: stringify!($method), path: $path, access: Access::$access },)*
        ];

        /// Registers every route of [`ROUTES`].
        pub fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::method(Method::$method).to($handler));)*
        }
    };
}

routes! {
    GET "/healthz" Public => super::healthz;
    HEAD "/healthz" Public => super::healthz;
    GET "/" Public => assets::index;
    GET "/static/{file}" Public => assets::file;
    POST "/v1/chat/completions" UnifiedKey => chat::chat_completions;
    POST "/v1/embeddings" UnifiedKey => embeddings::embeddings;
    POST "/v1/messages" UnifiedKey => messages::messages;
    POST "/v1/messages/count_tokens" UnifiedKey => messages::count_tokens;
    GET "/v1/models" UnifiedKey => models::list_models;
    GET "/v1/models/{id:.*}" UnifiedKey => models::get_model;
    POST "/v1/responses" UnifiedKey => responses::create;
    GET "/v1/responses/{id}" UnifiedKey => responses::retrieve;
    DELETE "/v1/responses/{id}" UnifiedKey => responses::delete;
    GET "/api/keys" UnifiedKey => admin::list_keys;
    POST "/api/keys" UnifiedKey => admin::add_key;
    PATCH "/api/keys/{id}" UnifiedKey => admin::update_key;
    DELETE "/api/keys/{id}" UnifiedKey => admin::remove_key;
    POST "/api/keys/{id}/check" UnifiedKey => live::check_key;
    POST "/api/signin" SignInCode => signin::exchange;
    GET "/api/aliases" UnifiedKey => aliases::get_aliases;
    PUT "/api/aliases" UnifiedKey => aliases::put_aliases;
    GET "/api/chain" UnifiedKey => admin::get_chain;
    PUT "/api/chain" UnifiedKey => admin::put_chain;
    GET "/api/analytics" UnifiedKey => admin::analytics;
    GET "/api/requests" UnifiedKey => admin::recent_requests;
    GET "/api/budgets" UnifiedKey => live::budgets;
    GET "/api/clients" UnifiedKey => clients::list;
    POST "/api/clients" UnifiedKey => clients::create;
    PATCH "/api/clients/{id}" UnifiedKey => clients::update;
    DELETE "/api/clients/{id}" UnifiedKey => clients::delete;
    POST "/api/token/rotate" UnifiedKey => admin::rotate_token;
    GET "/metrics" MetricsToken => metrics::metrics;
}

/// The access rule of the route `method path` matches; `UnifiedKey` for paths no route matches (deny by default).
pub fn access(method: &Method, path: &str) -> Access {
    ROUTES
        .iter()
        .find(|r| r.method == method.as_str() && pattern_matches(r.path, path))
        .map_or(Access::UnifiedKey, |r| r.access)
}

/// Whether `path` (as the router matches it) is under the API, `/v1`.
pub fn is_api(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// Whether `method path` is a public route. Anything else, including paths no route matches, needs the key.
pub fn is_public(method: &Method, path: &str) -> bool {
    access(method, path) == Access::Public
}

/// Matches an actix pattern whose `{name}` parts each stand for one non-empty path segment.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let mut parts = path.split('/');
    let matched = pattern.split('/').all(|want| match parts.next() {
        Some(got) if want.starts_with('{') => !got.is_empty(),
        Some(got) => got == want,
        None => false,
    });
    matched && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_health_and_dashboard_files_are_public() {
        let public: Vec<&str> = ROUTES
            .iter()
            .filter(|r| r.access == Access::Public)
            .map(|r| r.path)
            .collect();
        assert_eq!(public, ["/healthz", "/healthz", "/", "/static/{file}"]);
        assert!(is_public(&Method::HEAD, "/healthz"));
        assert!(is_public(&Method::GET, "/healthz"));
        assert!(is_public(&Method::GET, "/static/app.js"));
        assert!(!is_public(&Method::POST, "/healthz"));
        assert!(!is_public(&Method::GET, "/static/"));
        assert!(!is_public(&Method::GET, "/static/a/b"));
        assert!(!is_public(&Method::GET, "/healthz/"));
        assert!(!is_public(&Method::GET, "/v1/models"));
        assert!(!is_public(&Method::GET, "/nowhere"));
    }

    #[test]
    fn every_other_route_needs_the_key() {
        for r in ROUTES
            .iter()
            .filter(|r| r.path.starts_with("/v1") || r.path.starts_with("/api"))
            .filter(|r| r.path != "/api/signin")
        {
            assert_eq!(r.access, Access::UnifiedKey, "{} {}", r.method, r.path);
        }
        let signin: Vec<Access> = ROUTES
            .iter()
            .filter(|r| r.path == "/api/signin")
            .map(|r| r.access)
            .collect();
        assert_eq!(
            signin,
            [Access::SignInCode],
            "the sign-in exchange needs its one-time code, never nothing"
        );
    }
}
