//! The actors: a RouterActor on each HTTP worker and one at home (candidates, sticky sessions, key health, over
//! one shared routing state), a RateLimiterActor per worker and (platform, model, key) deciding by that triple's
//! shared budget, the HealthProbeActor that probes keys on an interval, the ProviderActors that call upstreams,
//! and the CatalogWatcher that swaps the catalog when its file changes. Messages live beside their actor; what to
//! decide is asked of `routing`, never decided here.

pub mod catalog_watch;
pub mod discovery;
pub mod health;
pub mod limiter;
pub mod provider;
pub mod router;

pub use health::HealthProbeActor;
pub use limiter::RateLimiterActor;
pub use router::{Candidate, KeyMaterial, Reload, RouterActor};
