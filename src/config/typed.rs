//! The typed configuration the rest of the program reads, and the error an invalid setting gives.
//!
//! Only the struct and its accessors live here: no environment variable names and no defaults (those are
//! `table.rs`'s, stated once), and nothing here reads the environment or imports its sibling modules.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::logging::LogFormat;
use crate::platform::Platform;

/// The validated configuration the rest of the program reads.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address.
    pub host: IpAddr,
    /// Listen port.
    pub port: u16,
    /// SQLite database file.
    pub database_path: PathBuf,
    /// The AES-256 key from `ENCRYPTION_KEY`, if set; otherwise the key file in the data dir is used.
    pub encryption_key: Option<[u8; 32]>,
    /// A fixed unified API key, if set.
    pub api_key: Option<String>,
    /// Base URL overrides per platform.
    pub base_urls: HashMap<Platform, String>,
    /// Interval between background key probes; `None` disables them.
    pub health_check_interval: Option<Duration>,
    /// Whole-request limit for one upstream attempt, and the longest silence inside a stream.
    pub upstream_timeout: Duration,
    /// Connect limit for one upstream attempt.
    pub connect_timeout: Duration,
    /// Limit until the first upstream event of one attempt while another candidate remains.
    pub first_byte_timeout: Duration,
    /// Extra root certificates (PEM) trusted for upstream TLS.
    pub upstream_ca_file: Option<PathBuf>,
    /// A catalog file merged over the embedded one and watched for edits.
    pub catalog_path: Option<PathBuf>,
    /// Per-platform overrides of `first_byte_timeout`.
    pub first_byte_timeouts: HashMap<Platform, Duration>,
    /// Origins allowed to call `/v1` from a browser (`*` for any); empty allows none.
    pub cors_allowed_origins: Vec<String>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Longest wait for a request body to arrive in full.
    pub body_read_timeout: Duration,
    /// Whether a stream that breaks after its first byte is continued elsewhere.
    pub stream_resume: bool,
    /// How long identical requests are answered from the response cache; `None`: no cache.
    pub response_cache_ttl: Option<Duration>,
    /// The response cache's bound, in bytes.
    pub response_cache_max_bytes: usize,
    /// Whether client keys share the owner's cached answers (otherwise each client has its own).
    pub response_cache_shared: bool,
    /// The env_logger filter (`RUST_LOG`).
    pub log_filter: String,
    /// Text or JSON log lines (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// A token accepted on `/metrics` besides the unified key.
    pub metrics_token: Option<String>,
    /// How long request-log rows are kept.
    pub log_retention: Duration,
    /// Failed unified-key attempts allowed per client address per minute (0: unlimited).
    pub auth_failures_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` is believed about the client's address.
    pub trusted_proxies: Vec<IpAddr>,
}

/// A setting that failed validation, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Every field zero or empty: the blank the settings table fills, each row with its value or its default.
    /// These are not defaults; a field only keeps its blank when its row's default is "unset" or computed later.
    pub(super) fn unfilled() -> Config {
        Config {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            database_path: PathBuf::new(),
            encryption_key: None,
            api_key: None,
            base_urls: HashMap::new(),
            health_check_interval: None,
            upstream_timeout: Duration::ZERO,
            connect_timeout: Duration::ZERO,
            first_byte_timeout: Duration::ZERO,
            upstream_ca_file: None,
            catalog_path: None,
            first_byte_timeouts: HashMap::new(),
            cors_allowed_origins: Vec::new(),
            max_body_bytes: 0,
            body_read_timeout: Duration::ZERO,
            stream_resume: false,
            response_cache_ttl: None,
            response_cache_max_bytes: 0,
            response_cache_shared: false,
            log_filter: String::new(),
            log_format: LogFormat::Text,
            metrics_token: None,
            log_retention: Duration::ZERO,
            auth_failures_per_minute: 0,
            trusted_proxies: Vec::new(),
        }
    }

    /// The directory holding the database and the generated encryption key.
    pub fn data_dir(&self) -> &Path {
        match self.database_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// The time-to-first-token limit for an attempt on `platform` while another candidate remains.
    pub fn first_byte_timeout_for(&self, platform: Platform) -> Duration {
        self.first_byte_timeouts
            .get(&platform)
            .copied()
            .unwrap_or(self.first_byte_timeout)
    }

    /// The base URL requests for `platform` go to, honouring overrides.
    pub fn base_url(&self, platform: Platform) -> Option<&str> {
        self.base_urls
            .get(&platform)
            .map(String::as_str)
            .or(platform.default_base_url())
    }
}
