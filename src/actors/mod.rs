//! The actors: the RouterActor (route table, sticky sessions, key health), one RateLimiterActor per (platform,
//! model, key) holding that budget, the HealthProbeActor that probes keys on an interval, and the ProviderActors
//! that call upstreams, the CatalogWatcher that swaps the catalog when its file changes, and each HTTP worker's
//! RouterOutbox that batches what requests tell the router. Messages live beside their actor; what to decide is asked of `routing`, never decided here.

pub mod catalog_watch;
pub mod discovery;
pub mod health;
pub mod limiter;
pub mod outbox;
pub mod provider;
pub mod router;

pub use health::HealthProbeActor;
pub use limiter::RateLimiterActor;
pub use router::{Candidate, KeyMaterial, Reload, RouterActor};
