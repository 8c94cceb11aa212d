//! The actors that decide where a request goes: the RouterActor (route table, sticky sessions, key health) and
//! one RateLimiterActor per (platform, model, key) holding that budget. Messages live beside their actor.

pub mod actor;
pub mod health;
pub mod limiter;
pub mod sticky;

pub use actor::{Candidate, KeyMaterial, Reload, RouterActor};
pub use health::HealthProbeActor;
pub use limiter::RateLimiterActor;
