//! Integration tests: the real binary against local mock upstreams. One file per capability.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod aliases;
mod anthropic_sdk;
mod auth;
mod budgets;
mod cache;
mod capabilities;
mod catalog;
mod chat;
mod cli;
mod clients;
mod cloudflare;
mod cohere;
mod conformance;
mod crash;
mod discovery;
mod embeddings;
mod errors;
mod failover;
mod faults;
mod framing;
mod gemini;
mod health;
mod key_leaks;
mod messages;
mod messages_errors;
mod mock_upstream;
mod operations;
mod persistence;
mod quota_yield;
mod responses;
mod resume;
mod sdk;
mod sdk_responses;
mod self_loop;
mod signin;
mod startup;
mod stickiness;
mod streaming;
