//! Every setting in one table: its environment variable, default, validation and the message on error.
//!
//! `.env` in the working directory is read first; real environment variables win. Nothing outside this module
//! reads the environment.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::logging::LogFormat;
use crate::platform::Platform;

/// One row of the settings table, shown by `--help`.
pub struct Setting {
    /// Environment variable name.
    pub env: &'static str,
    /// Default, as shown to users.
    pub default: &'static str,
    /// What it means.
    pub help: &'static str,
}

/// Every environment setting, in the order `--help` prints them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        env: "ENCRYPTION_KEY",
        default: "<data dir>/encryption.key, generated",
        help: "64 hex chars: AES-256 key for provider keys at rest (`freellmapi gen-key`)",
    },
    Setting {
        env: "HOST",
        default: "127.0.0.1",
        help: "listen address",
    },
    Setting {
        env: "PORT",
        default: "3001",
        help: "listen port",
    },
    Setting {
        env: "DATABASE_URL",
        default: "data/freellmapi.db",
        help: "SQLite file; its directory is created",
    },
    Setting {
        env: "FREELLMAPI_API_KEY",
        default: "generated and stored",
        help: "fixes the unified API key (must start with freellmapi-)",
    },
    Setting {
        env: "FREELLMAPI_BASE_URL_<PLATFORM>",
        default: "the provider's real URL",
        help: "replaces one provider's base URL (mocks, proxies)",
    },
    Setting {
        env: "HEALTH_CHECK_INTERVAL_SECS",
        default: "300",
        help: "background key probes; 0 disables",
    },
    Setting {
        env: "UPSTREAM_TIMEOUT_SECS",
        default: "120",
        help: "whole-request limit; also the longest silence tolerated inside a stream",
    },
    Setting {
        env: "UPSTREAM_CONNECT_TIMEOUT_SECS",
        default: "10",
        help: "TCP+TLS connect limit per attempt",
    },
    Setting {
        env: "UPSTREAM_FIRST_BYTE_TIMEOUT_SECS",
        default: "60",
        help: "time-to-first-token limit while another candidate remains: past it the next one is tried (the last candidate gets UPSTREAM_TIMEOUT_SECS)",
    },
    Setting {
        env: "UPSTREAM_CA_FILE",
        default: "unset",
        help: "PEM file of extra root certificates trusted for upstream TLS (a private CA, a TLS-inspecting proxy), besides Mozilla's",
    },
    Setting {
        env: "FREELLMAPI_FIRST_BYTE_TIMEOUT_<PLATFORM>",
        default: "UPSTREAM_FIRST_BYTE_TIMEOUT_SECS",
        help: "the same limit for one provider, in seconds (e.g. longer for a slow reasoning host)",
    },
    Setting {
        env: "CORS_ALLOWED_ORIGINS",
        default: "none",
        help: "comma-separated origins (https://app.example) or * allowed to call /v1 from a browser; /api never allows other origins",
    },
    Setting {
        env: "AUTH_FAILURES_PER_MINUTE",
        default: "30",
        help: "failed unified-key attempts allowed per client address per minute; 0 disables the limit",
    },
    Setting {
        env: "TRUSTED_PROXIES",
        default: "none",
        help: "comma-separated addresses of reverse proxies whose X-Forwarded-For names the client (per-client limits)",
    },
    Setting {
        env: "LOG_RETENTION_DAYS",
        default: "30",
        help: "days the request log keeps rows for analytics (at least 1)",
    },
    Setting {
        env: "MAX_BODY_BYTES",
        default: "10485760",
        help: "largest accepted request body",
    },
    Setting {
        env: "BODY_READ_TIMEOUT_SECS",
        default: "30",
        help: "longest wait for a request body to arrive in full; past it the request gets 408",
    },
    Setting {
        env: "STREAM_RESUME",
        default: "on",
        help: "continue a stream that breaks after its first byte on another model that continues a partial answer; off ends it with an error",
    },
    Setting {
        env: "RUST_LOG",
        default: "info",
        help: "env_logger filter",
    },
    Setting {
        env: "METRICS_TOKEN",
        default: "unset",
        help: "a second bearer token accepted on GET /metrics only (16+ visible ASCII chars), for scrapers",
    },
    Setting {
        env: "LOG_FORMAT",
        default: "text",
        help: "log lines as text, or json (one object per line: ts, level, target, message)",
    },
];

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
    /// Reads `.env` (if present) under the real environment and validates every setting.
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut vars: HashMap<String, String> = match std::fs::read_to_string(".env") {
            Ok(text) => parse_dotenv(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(ConfigError(format!("cannot read .env: {e}"))),
        };
        vars.extend(std::env::vars());
        Config::from_vars(&vars)
    }

    /// Validates settings from an explicit map (tests build configs this way).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

        let host = match get("HOST") {
            Some(h) => h.parse::<IpAddr>().map_err(|_| {
                ConfigError(format!(
                    "HOST={h} is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0"
                ))
            })?,
            None => IpAddr::from([127, 0, 0, 1]),
        };
        let port = parse_num::<u16>(get("PORT"), "PORT", 3001)?;
        let database_path = PathBuf::from(get("DATABASE_URL").unwrap_or("data/freellmapi.db"));
        let encryption_key = get("ENCRYPTION_KEY")
            .map(parse_encryption_key)
            .transpose()?;
        let api_key = get("FREELLMAPI_API_KEY")
            .map(validate_api_key)
            .transpose()?;

        let mut base_urls = HashMap::new();
        for platform in Platform::ALL {
            if let Some(url) = get(&platform.base_url_env()) {
                validate_base_url(url).map_err(|why| {
                    ConfigError(format!("{}={url}: {why}", platform.base_url_env()))
                })?;
                base_urls.insert(platform, url.trim_end_matches('/').to_owned());
            }
        }

        let health_secs = parse_num::<u64>(
            get("HEALTH_CHECK_INTERVAL_SECS"),
            "HEALTH_CHECK_INTERVAL_SECS",
            300,
        )?;
        let timeout_secs =
            parse_num::<u64>(get("UPSTREAM_TIMEOUT_SECS"), "UPSTREAM_TIMEOUT_SECS", 120)?;
        let connect_secs = parse_num::<u64>(
            get("UPSTREAM_CONNECT_TIMEOUT_SECS"),
            "UPSTREAM_CONNECT_TIMEOUT_SECS",
            10,
        )?;
        let first_byte_secs = parse_num::<u64>(
            get("UPSTREAM_FIRST_BYTE_TIMEOUT_SECS"),
            "UPSTREAM_FIRST_BYTE_TIMEOUT_SECS",
            60,
        )?;
        let body_read_secs =
            parse_num::<u64>(get("BODY_READ_TIMEOUT_SECS"), "BODY_READ_TIMEOUT_SECS", 30)?;
        for (name, v) in [
            ("BODY_READ_TIMEOUT_SECS", body_read_secs),
            ("UPSTREAM_TIMEOUT_SECS", timeout_secs),
            ("UPSTREAM_CONNECT_TIMEOUT_SECS", connect_secs),
            ("UPSTREAM_FIRST_BYTE_TIMEOUT_SECS", first_byte_secs),
        ] {
            if v == 0 {
                return Err(ConfigError(format!("{name} must be at least 1 (seconds)")));
            }
        }
        let mut first_byte_timeouts = HashMap::new();
        for platform in Platform::ALL {
            let name = platform.first_byte_timeout_env();
            if let Some(secs) = get(&name) {
                match secs.parse::<u64>() {
                    Ok(secs) if secs > 0 => {
                        first_byte_timeouts
                            .insert(platform, Duration::from_secs(secs.min(timeout_secs)));
                    }
                    _ => {
                        return Err(ConfigError(format!(
                            "{name}={secs} must be a whole number of seconds, at least 1"
                        )))
                    }
                }
            }
        }
        let cors_allowed_origins = get("CORS_ALLOWED_ORIGINS")
            .map(parse_origins)
            .transpose()?
            .unwrap_or_default();
        let retention_days = parse_num::<u64>(get("LOG_RETENTION_DAYS"), "LOG_RETENTION_DAYS", 30)?;
        if retention_days == 0 {
            return Err(ConfigError(
                "LOG_RETENTION_DAYS must be at least 1".to_owned(),
            ));
        }
        let max_body_bytes =
            parse_num::<usize>(get("MAX_BODY_BYTES"), "MAX_BODY_BYTES", 10 * 1024 * 1024)?;

        Ok(Config {
            host,
            port,
            database_path,
            encryption_key,
            api_key,
            base_urls,
            health_check_interval: (health_secs > 0).then(|| Duration::from_secs(health_secs)),
            upstream_timeout: Duration::from_secs(timeout_secs),
            connect_timeout: Duration::from_secs(connect_secs),
            first_byte_timeout: Duration::from_secs(first_byte_secs.min(timeout_secs)),
            first_byte_timeouts,
            upstream_ca_file: get("UPSTREAM_CA_FILE").map(PathBuf::from),
            cors_allowed_origins,
            max_body_bytes,
            body_read_timeout: Duration::from_secs(body_read_secs),
            stream_resume: get("STREAM_RESUME")
                .map(|v| parse_switch("STREAM_RESUME", v))
                .transpose()?
                .unwrap_or(true),
            log_filter: get("RUST_LOG").unwrap_or("info").to_owned(),
            metrics_token: get("METRICS_TOKEN")
                .map(validate_metrics_token)
                .transpose()?,
            log_format: get("LOG_FORMAT")
                .map(str::parse)
                .transpose()
                .map_err(ConfigError)?
                .unwrap_or_default(),
            log_retention: Duration::from_secs(retention_days.saturating_mul(86_400)),
            auth_failures_per_minute: parse_num::<u32>(
                get("AUTH_FAILURES_PER_MINUTE"),
                "AUTH_FAILURES_PER_MINUTE",
                30,
            )?,
            trusted_proxies: get("TRUSTED_PROXIES")
                .map(parse_trusted_proxies)
                .transpose()?
                .unwrap_or_default(),
        })
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

fn parse_num<T: std::str::FromStr>(
    value: Option<&str>,
    name: &str,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ConfigError(format!("{name}={v} is not a valid non-negative number"))),
    }
}

/// Parses `TRUSTED_PROXIES`: IP addresses separated by commas.
fn parse_trusted_proxies(list: &str) -> Result<Vec<IpAddr>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse().map_err(|_| {
                ConfigError(format!(
                    "TRUSTED_PROXIES: '{a}' is not an IP address; list the proxies' addresses, e.g. 127.0.0.1,::1"
                ))
            })
        })
        .collect()
}

/// Accepts a `METRICS_TOKEN` long enough not to be guessed and usable in an `Authorization` header.
fn validate_metrics_token(token: &str) -> Result<String, ConfigError> {
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError(
            "METRICS_TOKEN must be at least 16 visible ASCII characters (no spaces); e.g. the output of \
             `freellmapi gen-key`"
                .to_owned(),
        ));
    }
    Ok(token.to_owned())
}

/// Parses a 64-hex-char AES-256 key.
pub fn parse_encryption_key(value: &str) -> Result<[u8; 32], ConfigError> {
    let bad = || {
        ConfigError(
            "ENCRYPTION_KEY must be exactly 64 hex characters (32 bytes). Generate one with `freellmapi gen-key`, \
             or unset it to use the key file in the data directory."
                .to_owned(),
        )
    };
    let bytes = crate::hex::decode(value).ok_or_else(bad)?;
    bytes.try_into().map_err(|_| bad())
}

fn validate_api_key(value: &str) -> Result<String, ConfigError> {
    if !value.starts_with("freellmapi-") || value.len() < "freellmapi-".len() + 16 {
        return Err(ConfigError(
            "FREELLMAPI_API_KEY must start with 'freellmapi-' followed by at least 16 characters; \
             unset it to have one generated (`freellmapi token` prints it)."
                .to_owned(),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError(
            "FREELLMAPI_API_KEY must not contain spaces or control characters".to_owned(),
        ));
    }
    Ok(value.to_owned())
}

/// Checks that a base URL is an absolute http(s) URL; returns why not.
pub fn validate_base_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err("has no host".to_owned());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces".to_owned());
    }
    url.parse::<awc::http::Uri>()
        .map(|_| ())
        .map_err(|e| format!("is not a valid URL ({e})"))
}

/// Parses an on/off setting.
fn parse_switch(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError(format!("{name}={value}: use on or off"))),
    }
}

/// Parses `CORS_ALLOWED_ORIGINS`: `*`, or comma-separated `scheme://host[:port]` origins.
fn parse_origins(value: &str) -> Result<Vec<String>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let valid = origin == "*"
                || origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                    .is_some_and(|host| {
                        !host.is_empty() && !host.contains(['/', '?', '#', ' ', '*'])
                    });
            if valid {
                Ok(origin.to_owned())
            } else {
                Err(ConfigError(format!(
                    "CORS_ALLOWED_ORIGINS: '{origin}' is not an origin; use e.g. https://chat.example.com (no path) or *"
                )))
            }
        })
        .collect()
}

/// Parses `.env` text: `KEY=VALUE` lines, `#` comments, optional `export `, single or double quotes.
pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            inner.replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            inner.to_owned()
        } else {
            value
                .split(" #")
                .next()
                .unwrap_or_default()
                .trim_end()
                .to_owned()
        };
        vars.insert(key.trim().to_owned(), value);
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::from_vars(&HashMap::new()).unwrap();
        assert_eq!(c.port, 3001);
        assert_eq!(c.host.to_string(), "127.0.0.1");
        assert_eq!(c.database_path, PathBuf::from("data/freellmapi.db"));
        assert_eq!(c.data_dir(), Path::new("data"));
        assert_eq!(c.health_check_interval, Some(Duration::from_secs(300)));
        assert_eq!(c.upstream_timeout, Duration::from_secs(120));
        assert_eq!(c.max_body_bytes, 10 * 1024 * 1024);
        assert_eq!(c.log_retention, Duration::from_secs(30 * 86_400));
        assert!(Config::from_vars(&vars(&[("LOG_RETENTION_DAYS", "0")])).is_err());
        assert_eq!(
            c.base_url(Platform::Groq),
            Some("https://api.groq.com/openai/v1")
        );
    }

    #[test]
    fn bad_encryption_key_says_how_to_fix() {
        let err = Config::from_vars(&vars(&[("ENCRYPTION_KEY", "abc")])).unwrap_err();
        assert!(err.0.contains("freellmapi gen-key"), "{err}");
        let ok = "ab".repeat(32);
        assert!(Config::from_vars(&vars(&[("ENCRYPTION_KEY", &ok)])).is_ok());
    }

    #[test]
    fn base_url_override_is_validated_and_trimmed() {
        let c = Config::from_vars(&vars(&[(
            "FREELLMAPI_BASE_URL_GROQ",
            "http://127.0.0.1:9/openai/v1/",
        )]))
        .unwrap();
        assert_eq!(
            c.base_url(Platform::Groq),
            Some("http://127.0.0.1:9/openai/v1")
        );
        assert!(Config::from_vars(&vars(&[("FREELLMAPI_BASE_URL_GROQ", "ftp://x")])).is_err());
    }

    #[test]
    fn first_byte_timeout_per_platform_overrides_the_default() {
        let c = Config::from_vars(&vars(&[
            ("UPSTREAM_FIRST_BYTE_TIMEOUT_SECS", "20"),
            ("FREELLMAPI_FIRST_BYTE_TIMEOUT_GROQ", "5"),
            ("FREELLMAPI_FIRST_BYTE_TIMEOUT_NVIDIA", "999"),
        ]))
        .unwrap();
        assert_eq!(
            c.first_byte_timeout_for(Platform::Groq),
            Duration::from_secs(5)
        );
        assert_eq!(
            c.first_byte_timeout_for(Platform::Google),
            Duration::from_secs(20)
        );
        assert_eq!(
            c.first_byte_timeout_for(Platform::Nvidia),
            c.upstream_timeout,
            "capped at the whole-request limit"
        );
        let err =
            Config::from_vars(&vars(&[("FREELLMAPI_FIRST_BYTE_TIMEOUT_GROQ", "0")])).unwrap_err();
        assert!(
            err.0.contains("FREELLMAPI_FIRST_BYTE_TIMEOUT_GROQ"),
            "{err}"
        );
    }

    #[test]
    fn cors_origins_are_validated() {
        let c = Config::from_vars(&vars(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://a.example, http://localhost:5173",
        )]))
        .unwrap();
        assert_eq!(
            c.cors_allowed_origins,
            ["https://a.example", "http://localhost:5173"]
        );
        assert!(Config::from_vars(&HashMap::new())
            .unwrap()
            .cors_allowed_origins
            .is_empty());
        for bad in ["a.example", "https://a.example/path", "https://*.example"] {
            assert!(
                Config::from_vars(&vars(&[("CORS_ALLOWED_ORIGINS", bad)])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn health_interval_zero_disables() {
        let c = Config::from_vars(&vars(&[("HEALTH_CHECK_INTERVAL_SECS", "0")])).unwrap();
        assert_eq!(c.health_check_interval, None);
    }

    #[test]
    fn api_key_must_have_prefix() {
        assert!(Config::from_vars(&vars(&[("FREELLMAPI_API_KEY", "sk-123")])).is_err());
        assert!(Config::from_vars(&vars(&[(
            "FREELLMAPI_API_KEY",
            "freellmapi-0123456789abcdef"
        )]))
        .is_ok());
    }

    #[test]
    fn dotenv_handles_quotes_comments_export() {
        let v = parse_dotenv(
            "# c\nexport PORT=4000\nHOST=\"0.0.0.0\"\nX='a b' \nY=1 # trailing\n\nbad line\n",
        );
        assert_eq!(v["PORT"], "4000");
        assert_eq!(v["HOST"], "0.0.0.0");
        assert_eq!(v["X"], "a b");
        assert_eq!(v["Y"], "1");
        assert!(!v.contains_key("bad line"));
    }
}
