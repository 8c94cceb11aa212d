//! Starting and stopping the server: open the database, check secrets, start the actors and actix-web, and on
//! SIGINT/SIGTERM drain in-flight requests (up to 30 s) and flush the request log and kept responses.

use std::net::TcpListener;
use std::sync::Arc;

use actix::prelude::*;
use actix_web::{web, App, HttpServer};

use crate::actors::catalog_watch::{self, CatalogWatcher};
use crate::actors::health::ProbeDeps;
use crate::actors::provider::{LocalProvider, ProviderPool, Timeouts};
use crate::actors::router::{LocalRouter, RoutingState};
use crate::actors::router::{RoutingData, SaveBudgets};
use crate::actors::{HealthProbeActor, RouterActor};
use crate::analytics::{Flush, RequestLogger, WorkerLog};
use crate::catalog::{Catalog, SharedCatalog};
use crate::client_keys::ClientKeys;
use crate::config::Config;
use crate::crypto::key_aad;
use crate::hops::Hops;
use crate::http::auth::FailedAuthLimiter;
use crate::http::signin::{SignIn, SIGN_IN_TTL};
use crate::http::{self, AppState, UnifiedKey};
use crate::logging;
use crate::metrics::InFlight;
use crate::providers::{connector, Registry};
use crate::redact::Redactor;
use crate::response_cache::ResponseCache;
use crate::response_store::ResponseStore;
use crate::{startup_secrets, store};

/// Seconds in-flight requests get to finish after a stop signal.
const SHUTDOWN_GRACE_SECS: u64 = 30;
/// Database threads: SQLite has one writer, readers run beside it in WAL mode.
const DB_THREADS: usize = 2;
/// ProviderActors for health probes (chat requests use their HTTP worker's own).
const PROBE_ARBITERS: usize = 1;

/// Runs the server until a stop signal; the error says what to do.
pub fn run(config: Config) -> Result<(), String> {
    logging::init(&config.log_filter, config.log_format);
    let catalog_stamp = config
        .catalog_path
        .as_deref()
        .and_then(catalog_watch::stamp);
    let catalog = Catalog::load(config.catalog_path.as_deref())?;
    let mut conn = store::open(&config.database_path).map_err(|e| e.to_string())?;
    let _instance =
        store::lock::InstanceLock::acquire(&config.database_path).map_err(|e| e.to_string())?;
    let prepared = startup_secrets::prepare(&mut conn, &config, &catalog)?;
    if let Some(path) = &prepared.generated_key_file {
        log::warn!(
            "No ENCRYPTION_KEY set: generated one at {} (mode 0600). Back it up: without it the stored provider keys \
             cannot be decrypted.",
            path.display()
        );
    }
    if prepared.unified_key_created {
        log::info!(
            "Generated the unified API key (shown once; `freellmapi token` prints it again): {}",
            prepared.unified_key
        );
    }
    let (signin, signin_code) = if prepared.unified_key_created {
        let (signin, code) = SignIn::issue(SIGN_IN_TTL);
        (signin, Some(code))
    } else {
        (SignIn::default(), None)
    };
    let data = RoutingData::load(&mut conn).map_err(|e| e.to_string())?;
    let redactor = known_secrets(&prepared, &data, &config);
    let tls = connector::tls_config(config.upstream_ca_file.as_deref())?;
    let saved_budgets = store::budgets::list(&mut conn).map_err(|e| e.to_string())?;
    drop(conn);
    let listener = TcpListener::bind((config.host, config.port)).map_err(|e| {
        format!(
            "cannot listen on {}:{}: {e}. If another program uses the port, stop it or set PORT to a free one.",
            config.host, config.port
        )
    })?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    if data.keys.is_empty() {
        log::info!("No provider keys yet. Add one with `freellmapi keys add groq gsk_...` or POST /api/keys.");
    }

    let database_path = config.database_path.clone();
    let served = actix_rt::System::new().block_on(async move {
        let config = Arc::new(config);
        let db = store::Db::start(config.database_path.clone(), DB_THREADS)
            .map_err(|e| e.to_string())?;
        let registry = Arc::new(Registry::new(&config));
        let providers =
            ProviderPool::start(PROBE_ARBITERS, config.connect_timeout, &tls, &redactor);
        let catalog = SharedCatalog::new(catalog);
        let routing = Arc::new(RoutingState::new(
            catalog.clone(),
            registry.clone(),
            data,
            saved_budgets,
        ));
        let router = RouterActor::home(db.clone(), routing.clone()).start();
        // Its own thread: turning records into rows must never hold up the router on the system arbiter.
        let log_arbiter = actix::Arbiter::new();
        let (log_db, retention) = (db.clone(), config.log_retention);
        let logger = RequestLogger::start_in_arbiter(&log_arbiter.handle(), move |_| {
            RequestLogger::new(log_db, retention)
        });
        if let Some(path) = &config.catalog_path {
            let (catalog, db, router) = (catalog.clone(), db.clone(), router.clone());
            CatalogWatcher::new(path.clone(), catalog_stamp, catalog, db, router).start();
        }
        let cipher = Arc::new(prepared.cipher);
        let hops = Hops::new();
        let probe_deps = ProbeDeps {
            db: db.clone(),
            router: router.clone(),
            providers,
            registry: registry.clone(),
            cipher: cipher.clone(),
            hops: hops.own(),
            timeouts: Timeouts::from_config(&config),
        };
        let health = HealthProbeActor::new(probe_deps, config.health_check_interval).start();
        let responses = ResponseStore::start(db.clone(), config.log_retention);
        let clients = ClientKeys::load(db.clone())
            .await
            .map_err(|e| format!("cannot read client keys: {e}"))?;
        clients.save_in_background();
        let worker_db = db.clone();
        let state = web::Data::new(AppState {
            config: config.clone(),
            db,
            cipher,
            catalog,
            registry,
            unified_key: UnifiedKey::new(prepared.unified_key),
            auth_failures: FailedAuthLimiter::new(config.auth_failures_per_minute),
            router: router.clone(),
            health,
            logger: logger.clone(),
            started_unix_secs: crate::timefmt::now_unix_ms() / 1000,
            streams: InFlight::default(),
            hops,
            listen: address,
            redactor: redactor.clone(),
            responses: responses.clone(),
            signin,
            clients: clients.clone(),
            cache: config.response_cache_ttl.map(|ttl| {
                Arc::new(ResponseCache::new(
                    ttl,
                    config.response_cache_max_bytes,
                    config.response_cache_shared,
                ))
            }),
        });
        let connect_timeout = config.connect_timeout;
        let worker_logger = logger.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::Data::new(LocalProvider::start(
                    connect_timeout,
                    tls.clone(),
                    redactor.clone(),
                )))
                .app_data(web::Data::new(WorkerLog::start(worker_logger.clone())))
                .app_data(web::Data::new(LocalRouter::start(
                    worker_db.clone(),
                    routing.clone(),
                )))
                .app_data(http::path_config())
                .app_data(http::query_config())
                .configure(http::configure)
        })
        .shutdown_timeout(SHUTDOWN_GRACE_SECS)
        // A client that closes its side is gone: its request is dropped at once, which aborts the upstream call
        // and settles its budget lease, instead of waiting out an answer nobody will read.
        .h1_allow_half_closed(false)
        .listen(listener)
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?
        .run();
        log::info!(
            "freellmapi listening on http://{address} (OpenAI base URL http://{address}/v1)"
        );
        if let Some(code) = signin_code {
            log::info!(
                "Open the dashboard, signed in: http://{}/#signin={code} (works once, for 15 minutes)",
                browsable(address)
            );
        }
        let served = server
            .await
            .map_err(|e| format!("the HTTP server failed: {e}"));
        log::info!("stopping: saving budgets, flushing the request log and kept responses");
        if let Err(e) = router.send(SaveBudgets).await {
            log::warn!("could not save budgets: {e}");
        }
        if let Err(e) = logger.send(Flush).await {
            log::warn!("could not flush the request log: {e}");
        }
        responses.flush().await;
        clients.save().await;
        System::current().stop();
        served
    });
    if let Err(e) = store::checkpoint(&database_path) {
        log::warn!("could not checkpoint the database at shutdown: {e}");
    }
    served
}

/// Every secret this process starts with (the unified key, the metrics token, each stored provider key), so a
/// piece of any of them is masked wherever upstream text is kept or shown.
fn known_secrets(
    prepared: &startup_secrets::Prepared,
    data: &RoutingData,
    config: &Config,
) -> Redactor {
    let redactor = Redactor::default();
    redactor.learn(&prepared.unified_key);
    if let Some(token) = &config.metrics_token {
        redactor.learn(token);
    }
    for row in &data.keys {
        let aad = key_aad(row.id, &row.platform);
        if let Ok(secret) = prepared.cipher.open(&row.nonce, &row.ciphertext, &aad) {
            redactor.learn(&secret);
        }
    }
    redactor
}

/// The address a browser on this machine reaches the listener at: a wildcard listen address becomes loopback.
fn browsable(address: std::net::SocketAddr) -> std::net::SocketAddr {
    let ip = match address.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    std::net::SocketAddr::new(ip, address.port())
}
