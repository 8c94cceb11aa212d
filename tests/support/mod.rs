//! Shared test support: a scripted OpenAI-wire mock upstream, a harness that runs the real binary, and a small
//! HTTP client.

pub mod client;
pub mod gateway;
pub mod mock;
pub mod provider_sim;
pub mod python;
pub mod raw;
pub mod setup;
