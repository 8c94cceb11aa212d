//! Loading the configuration: `.env` under the real environment, each variable parsed by its row of the
//! settings table (`table.rs`, its checks in `checks.rs`) into the typed `Config` (`typed.rs`) the rest of the
//! program reads.
//!
//! `.env` in the working directory is read first; real environment variables win. Nothing outside this module
//! reads the environment, and no setting's name, default or check is stated here: the table has them.

use std::collections::HashMap;

mod checks;
mod table;
mod typed;

pub use checks::{parse_encryption_key, validate_base_url};
pub use table::{settings_help, Fallback, Setting, SETTINGS};
pub use typed::{Config, ConfigError};

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

    /// Validates settings from an explicit map (tests build configs this way): every row of the table, in order.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut config = Config::unfilled();
        for setting in SETTINGS {
            setting.load(&mut config, vars)?;
        }
        // A first-byte limit longer than the whole-request limit would never fire first: cap each at it.
        let whole = config.upstream_timeout;
        config.first_byte_timeout = config.first_byte_timeout.min(whole);
        for limit in config.first_byte_timeouts.values_mut() {
            *limit = (*limit).min(whole);
        }
        Ok(config)
    }
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
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::*;
    use crate::platform::Platform;

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
