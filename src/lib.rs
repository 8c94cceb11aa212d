//! freellmapi: a self-hosted, OpenAI-compatible gateway over free-tier LLM API keys.
//!
//! Layers point one way: `http → router → providers → openai`; `router → store` only through messages;
//! nothing points back at `http`. `routing` holds the pure decisions the actors call.

pub mod analytics;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod error;
pub mod healthcheck;
pub mod hex;
pub mod hops;
pub mod http;
pub mod key_rotation;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod openai;
pub mod platform;
pub mod providers;
pub mod redact;
pub mod router;
pub mod routing;
pub mod secrets;
pub mod server;
pub mod store;
pub mod timefmt;
