//! freellmapi: a self-hosted, OpenAI-compatible gateway over free-tier LLM API keys.
//!
//! Layers, lowest first. A module imports only from modules of its own layer or a lower one, never from a
//! higher one, and no two files import each other (`tests/layers.rs` checks both). `routing` holds the pure
//! decisions the actors (`actors`) call; `actors → store` goes only through messages.
//!
//! - layer 0: hex timefmt error platform logging redact openai anthropic responses healthcheck provider_key
//! - layer 1: crypto config day_window failure hops request_record response_cache
//! - layer 2: catalog quota_news
//! - layer 3: store
//! - layer 4: key_admin chain_offers startup_secrets encryption_key_rotation
//! - layer 5: routing
//! - layer 6: providers
//! - layer 7: actors
//! - layer 8: metrics analytics response_store client_keys
//! - layer 9: http
//! - layer 10: server cli

pub mod actors;
pub mod analytics;
pub mod anthropic;
pub mod catalog;
pub mod chain_offers;
pub mod cli;
pub mod client_keys;
pub mod config;
pub mod crypto;
pub mod day_window;
pub mod encryption_key_rotation;
pub mod error;
pub mod failure;
pub mod healthcheck;
pub mod hex;
pub mod hops;
pub mod http;
pub mod key_admin;
pub mod logging;
pub mod metrics;
pub mod openai;
pub mod platform;
pub mod provider_key;
pub mod providers;
pub mod quota_news;
pub mod redact;
pub mod request_record;
pub mod response_cache;
pub mod response_store;
pub mod responses;
pub mod routing;
pub mod server;
pub mod startup_secrets;
pub mod store;
pub mod timefmt;
