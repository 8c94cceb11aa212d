//! actix-web: the routes, split by audience (OpenAI and Anthropic API, admin API, dashboard files), each module only
//! registering routes and calling down into the router or the store.

pub mod admin;
pub mod aliases;
pub mod assets;
pub mod auth;
pub mod body;
pub mod chat;
pub mod clients;
pub mod embeddings;
pub mod error_shape;
pub mod guard;
pub mod live;
pub mod messages;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod request_id;
pub mod responses;
pub mod routes;
pub mod signin;

use std::net::SocketAddr;
use std::sync::Arc;

use actix::Addr;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::actors::{HealthProbeActor, RouterActor};
use crate::analytics::RequestLogger;
use crate::catalog::SharedCatalog;
use crate::client_keys::ClientKeys;
use crate::config::Config;
use crate::crypto::Cipher;
use crate::error::ApiError;
use crate::hops::Hops;
use crate::metrics::InFlight;
use crate::providers::Registry;
use crate::redact::Redactor;
use crate::response_cache::ResponseCache;
use crate::response_store::ResponseStore;
use crate::store::Db;
pub use auth::UnifiedKey;

/// Everything handlers share.
pub struct AppState {
    /// Validated settings.
    pub config: Arc<Config>,
    /// The database actor.
    pub db: Db,
    /// Seals and opens provider keys.
    pub cipher: Arc<Cipher>,
    /// The model catalog in force (swapped when `CATALOG_PATH` changes).
    pub catalog: SharedCatalog,
    /// Provider adapters and base URLs.
    pub registry: Arc<Registry>,
    /// The unified API key.
    pub unified_key: UnifiedKey,
    /// Failed-authentication budget per client address.
    pub auth_failures: auth::FailedAuthLimiter,
    /// The home RouterActor, for admin questions and reloads (requests use their worker's own, `LocalRouter`).
    pub router: Addr<RouterActor>,
    /// Key probes.
    pub health: Addr<HealthProbeActor>,
    /// The request log writer.
    pub logger: Addr<RequestLogger>,
    /// When the server started (Unix seconds), used as `created` of listed models.
    pub started_unix_secs: i64,
    /// Streams being relayed now, for `/metrics`.
    pub streams: InFlight,
    /// This instance's id in hop lists, for refusing requests that loop back.
    pub hops: Hops,
    /// The address the server listens on, so keys cannot point back at it.
    pub listen: SocketAddr,
    /// Masks secrets in upstream text; learns every key added and every unified key made.
    pub redactor: Redactor,
    /// The first-run sign-in code, while one is valid.
    pub signin: signin::SignIn,
    /// Client keys, their limits and use.
    pub clients: ClientKeys,
    /// Responses kept for `GET /v1/responses/{id}` and `previous_response_id`.
    pub responses: ResponseStore,
    /// Answers kept for identical requests, when `RESPONSE_CACHE_TTL_SECS` turns the cache on.
    pub cache: Option<Arc<ResponseCache>>,
}

/// Registers every route of [`routes::ROUTES`] behind the request guard; used by the server and by tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(from_fn(guard::guard))
            .wrap(from_fn(request_id::tag))
            .configure(routes::register)
            .default_service(web::to(not_found)),
    );
}

/// Makes the router re-read keys and chain, so the caller's change is in effect when it answers.
pub(crate) async fn reload(state: &AppState) {
    if let Err(e) = state.router.send(crate::actors::Reload).await {
        log::warn!("router did not reload: {e}");
    }
}

/// `GET /healthz`: 200 while the database answers.
pub(super) async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let ping = state.db.run(|conn| {
        diesel::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), conn)?;
        Ok(())
    });
    match ping.await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "error": e.to_string()})),
    }
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(
        "No such route. See the README for the API.",
    ))
}

/// Turns path extractor failures (e.g. a non-numeric id) into OpenAI-shaped 400s.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|e, _| {
        ApiError::invalid_request("invalid_path", format!("Invalid path parameter: {e}")).into()
    })
}

/// Turns query extractor failures into OpenAI-shaped 400s.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e, _| {
        ApiError::invalid_request("invalid_query", format!("Invalid query string: {e}")).into()
    })
}
