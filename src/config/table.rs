//! The settings table: one row per environment variable, naming its default, how its text is parsed and
//! validated (and so the message an invalid value gets), and its `--help` line. Loading, the defaults and
//! `--help` all read these rows, so none of them can say something the others do not.
//!
//! It must not read the environment itself (`mod.rs` hands it the variables) nor import `mod.rs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::checks::{
    api_key, at_least_one, encryption_key, ip, metrics_token, number, origins, switch,
    trusted_proxies, validate_base_url, Why, ENCRYPTION_KEY,
};
use super::typed::{Config, ConfigError};
use crate::logging::LogFormat;
use crate::platform::Platform;

/// One row of the settings table: the only place a setting's name, default, parsing and help are stated.
pub struct Setting {
    /// Environment variable name; a family (one variable per platform) has `<PLATFORM>` in it.
    pub env: &'static str,
    /// What an unset variable means.
    pub default: Fallback,
    /// What it means, for `--help`.
    pub help: &'static str,
    /// How the text is parsed and validated, what an invalid value is told, and which field it fills.
    kind: Kind,
}

/// What an unset (or empty) variable means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// This text, parsed by the row's kind as if it had been set: the typed default and the help text at once.
    Value(&'static str),
    /// The field stays empty (`None`, no entries); the text says what that means.
    Unset(&'static str),
    /// Special: worked out elsewhere at run time, as the text says; the field stays empty here.
    Computed(&'static str),
}

impl Fallback {
    /// The default as `--help` shows it.
    pub fn text(self) -> &'static str {
        match self {
            Fallback::Value(text) | Fallback::Unset(text) | Fallback::Computed(text) => text,
        }
    }
}

/// How a setting's text becomes a field of `Config`. Each kind has one parser and one set of messages; the
/// function it carries stores the typed value.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An IP address.
    Ip(fn(&mut Config, IpAddr)),
    /// A TCP port number.
    Port(fn(&mut Config, u16)),
    /// Whole seconds, at least 1.
    Seconds(fn(&mut Config, Duration)),
    /// Whole seconds; 0 turns the feature off (`None`).
    SecondsOrOff(fn(&mut Config, Option<Duration>)),
    /// Whole days, at least 1.
    Days(fn(&mut Config, Duration)),
    /// A count; 0 allowed.
    Count(fn(&mut Config, u32)),
    /// A size in bytes.
    Bytes(fn(&mut Config, usize)),
    /// on/off (also true/false, 1/0, yes/no).
    Switch(fn(&mut Config, bool)),
    /// A file path, taken as it is; whether the file is usable is checked where it is opened.
    Path(fn(&mut Config, PathBuf)),
    /// Text handed on as it is.
    Text(fn(&mut Config, String)),
    /// `text` or `json`.
    LogFormat(fn(&mut Config, LogFormat)),
    /// A value with a check of its own (secrets, lists), which says what is wrong.
    Custom(fn(&mut Config, &str) -> Result<(), Why>),
    /// One variable per platform (`<PLATFORM>` in the name, upper-cased id), with a check of its own.
    PerPlatform(fn(&mut Config, Platform, &str) -> Result<(), Why>),
}

/// The placeholder that makes a row a family of per-platform variables.
const PLATFORM: &str = "<PLATFORM>";

/// Every environment setting, in the order `--help` prints them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        env: ENCRYPTION_KEY,
        default: Fallback::Computed("<data dir>/encryption.key, generated"),
        help: "64 hex chars: AES-256 key for provider keys at rest (`freellmapi gen-key`)",
        kind: Kind::Custom(|c, v| {
            c.encryption_key = Some(encryption_key(v)?);
            Ok(())
        }),
    },
    Setting {
        env: "HOST",
        default: Fallback::Value("127.0.0.1"),
        help: "listen address",
        kind: Kind::Ip(|c, v| c.host = v),
    },
    Setting {
        env: "PORT",
        default: Fallback::Value("3001"),
        help: "listen port",
        kind: Kind::Port(|c, v| c.port = v),
    },
    Setting {
        env: "DATABASE_URL",
        default: Fallback::Value("data/freellmapi.db"),
        help: "SQLite file; its directory is created",
        kind: Kind::Path(|c, v| c.database_path = v),
    },
    Setting {
        env: "FREELLMAPI_API_KEY",
        default: Fallback::Computed("generated and stored"),
        help: "fixes the unified API key (must start with freellmapi-)",
        kind: Kind::Custom(|c, v| {
            c.api_key = Some(api_key(v)?);
            Ok(())
        }),
    },
    Setting {
        env: "FREELLMAPI_BASE_URL_<PLATFORM>",
        default: Fallback::Computed("the provider's real URL"),
        help: "replaces one provider's base URL (mocks, proxies)",
        kind: Kind::PerPlatform(|c, platform, v| {
            validate_base_url(v).map_err(Why::Hint)?;
            c.base_urls
                .insert(platform, v.trim_end_matches('/').to_owned());
            Ok(())
        }),
    },
    Setting {
        env: "HEALTH_CHECK_INTERVAL_SECS",
        default: Fallback::Value("300"),
        help: "background key probes; 0 disables",
        kind: Kind::SecondsOrOff(|c, v| c.health_check_interval = v),
    },
    Setting {
        env: "UPSTREAM_TIMEOUT_SECS",
        default: Fallback::Value("120"),
        help: "whole-request limit; also the longest silence tolerated inside a stream",
        kind: Kind::Seconds(|c, v| c.upstream_timeout = v),
    },
    Setting {
        env: "UPSTREAM_CONNECT_TIMEOUT_SECS",
        default: Fallback::Value("10"),
        help: "TCP+TLS connect limit per attempt",
        kind: Kind::Seconds(|c, v| c.connect_timeout = v),
    },
    Setting {
        env: "UPSTREAM_FIRST_BYTE_TIMEOUT_SECS",
        default: Fallback::Value("60"),
        help: "time-to-first-token limit while another candidate remains: past it the next one is tried (the last candidate gets UPSTREAM_TIMEOUT_SECS)",
        kind: Kind::Seconds(|c, v| c.first_byte_timeout = v),
    },
    Setting {
        env: "UPSTREAM_CA_FILE",
        default: Fallback::Unset("unset"),
        help: "PEM file of extra root certificates trusted for upstream TLS (a private CA, a TLS-inspecting proxy), besides Mozilla's",
        kind: Kind::Path(|c, v| c.upstream_ca_file = Some(v)),
    },
    Setting {
        env: "CATALOG_PATH",
        default: Fallback::Unset("unset"),
        help: "JSON file in the embedded catalog's format merged over it (its entries win); edits apply without a restart",
        kind: Kind::Path(|c, v| c.catalog_path = Some(v)),
    },
    Setting {
        env: "FREELLMAPI_FIRST_BYTE_TIMEOUT_<PLATFORM>",
        default: Fallback::Computed("UPSTREAM_FIRST_BYTE_TIMEOUT_SECS"),
        help: "the same limit for one provider, in seconds (e.g. longer for a slow reasoning host)",
        kind: Kind::PerPlatform(|c, platform, v| match v.parse::<u64>() {
            Ok(secs) if secs > 0 => {
                c.first_byte_timeouts
                    .insert(platform, Duration::from_secs(secs));
                Ok(())
            }
            _ => Err(Why::Value(
                "must be a whole number of seconds, at least 1".to_owned(),
            )),
        }),
    },
    Setting {
        env: "CORS_ALLOWED_ORIGINS",
        default: Fallback::Unset("none"),
        help: "comma-separated origins (https://app.example) or * allowed to call /v1 from a browser; /api never allows other origins",
        kind: Kind::Custom(|c, v| {
            c.cors_allowed_origins = origins(v)?;
            Ok(())
        }),
    },
    Setting {
        env: "AUTH_FAILURES_PER_MINUTE",
        default: Fallback::Value("30"),
        help: "failed unified-key attempts allowed per client address per minute; 0 disables the limit",
        kind: Kind::Count(|c, v| c.auth_failures_per_minute = v),
    },
    Setting {
        env: "TRUSTED_PROXIES",
        default: Fallback::Unset("none"),
        help: "comma-separated addresses of reverse proxies whose X-Forwarded-For names the client (per-client limits)",
        kind: Kind::Custom(|c, v| {
            c.trusted_proxies = trusted_proxies(v)?;
            Ok(())
        }),
    },
    Setting {
        env: "LOG_RETENTION_DAYS",
        default: Fallback::Value("30"),
        help: "days the request log keeps rows for analytics (at least 1)",
        kind: Kind::Days(|c, v| c.log_retention = v),
    },
    Setting {
        env: "MAX_BODY_BYTES",
        default: Fallback::Value("10485760"),
        help: "largest accepted request body",
        kind: Kind::Bytes(|c, v| c.max_body_bytes = v),
    },
    Setting {
        env: "BODY_READ_TIMEOUT_SECS",
        default: Fallback::Value("30"),
        help: "longest wait for a request body to arrive in full; past it the request gets 408",
        kind: Kind::Seconds(|c, v| c.body_read_timeout = v),
    },
    Setting {
        env: "STREAM_RESUME",
        default: Fallback::Value("on"),
        help: "continue a stream that breaks after its first byte on another model that continues a partial answer; off ends it with an error",
        kind: Kind::Switch(|c, v| c.stream_resume = v),
    },
    Setting {
        env: "RESPONSE_CACHE_TTL_SECS",
        default: Fallback::Value("0"),
        help: "answer an identical request from memory for this long, spending no quota (X-Cache: hit); 0 turns the cache off",
        kind: Kind::SecondsOrOff(|c, v| c.response_cache_ttl = v),
    },
    Setting {
        env: "RESPONSE_CACHE_MAX_MB",
        default: Fallback::Value("64"),
        help: "memory the response cache may hold; the oldest answers go first",
        kind: Kind::Count(|c, v| c.response_cache_max_bytes = (v as usize).saturating_mul(1 << 20)),
    },
    Setting {
        env: "RESPONSE_CACHE_SHARED",
        default: Fallback::Value("off"),
        help: "on: client keys read and fill the owner's cached answers; off: each client key has its own",
        kind: Kind::Switch(|c, v| c.response_cache_shared = v),
    },
    Setting {
        env: "RUST_LOG",
        default: Fallback::Value("info"),
        help: "env_logger filter",
        kind: Kind::Text(|c, v| c.log_filter = v),
    },
    Setting {
        env: "METRICS_TOKEN",
        default: Fallback::Unset("unset"),
        help: "a second bearer token accepted on GET /metrics only (16+ visible ASCII chars), for scrapers",
        kind: Kind::Custom(|c, v| {
            c.metrics_token = Some(metrics_token(v)?);
            Ok(())
        }),
    },
    Setting {
        env: "LOG_FORMAT",
        default: Fallback::Value("text"),
        help: "log lines as text, or json (one object per line: ts, level, target, message)",
        kind: Kind::LogFormat(|c, v| c.log_format = v),
    },
];

/// The `--help` section that lists every setting, one line per row of `SETTINGS`.
pub fn settings_help() -> String {
    let mut lines = vec!["Environment (a .env in the working directory is read first):".to_owned()];
    lines.extend(
        SETTINGS
            .iter()
            .map(|s| format!("  {:<34} {} (default: {})", s.env, s.help, s.default.text())),
    );
    lines.join("\n")
}

impl Setting {
    /// Fills this row's field from `vars` (or from its default); an invalid value's message names its variable.
    pub(super) fn load(
        &self,
        config: &mut Config,
        vars: &HashMap<String, String>,
    ) -> Result<(), ConfigError> {
        for (env, platform) in self.variables() {
            let given = vars.get(&env).map(|v| v.trim()).filter(|v| !v.is_empty());
            let text = match (given, self.default) {
                (Some(text), _) | (None, Fallback::Value(text)) => text,
                (None, Fallback::Unset(_) | Fallback::Computed(_)) => continue,
            };
            self.kind
                .apply(config, platform, text)
                .map_err(|why| why.naming(&env, text))?;
        }
        Ok(())
    }

    /// The variables this row stands for: its own name, or one per platform for a family.
    fn variables(&self) -> Vec<(String, Option<Platform>)> {
        match self.kind {
            Kind::PerPlatform(_) => Platform::ALL
                .into_iter()
                .map(|p| {
                    let env = self.env.replace(PLATFORM, &p.id().to_ascii_uppercase());
                    (env, Some(p))
                })
                .collect(),
            _ => vec![(self.env.to_owned(), None)],
        }
    }
}

impl Kind {
    /// Parses `text` and stores it in `config`, or says what is wrong with it.
    fn apply(self, config: &mut Config, platform: Option<Platform>, text: &str) -> Result<(), Why> {
        match self {
            Kind::Ip(set) => set(config, ip(text)?),
            Kind::Port(set) => set(config, number(text)?),
            Kind::Seconds(set) => set(
                config,
                Duration::from_secs(at_least_one(number(text)?, " (seconds)")?),
            ),
            Kind::SecondsOrOff(set) => {
                let secs = number(text)?;
                set(config, (secs > 0).then(|| Duration::from_secs(secs)));
            }
            Kind::Days(set) => {
                let days = at_least_one(number(text)?, "")?;
                set(config, Duration::from_secs(days.saturating_mul(86_400)));
            }
            Kind::Count(set) => set(config, number(text)?),
            Kind::Bytes(set) => set(config, number(text)?),
            Kind::Switch(set) => set(config, switch(text)?),
            Kind::Path(set) => set(config, PathBuf::from(text)),
            Kind::Text(set) => set(config, text.to_owned()),
            Kind::LogFormat(set) => set(config, text.parse().map_err(Why::Hint)?),
            Kind::Custom(set) => set(config, text)?,
            Kind::PerPlatform(set) => {
                let platform = platform
                    .ok_or_else(|| Why::Rule(format!("is not one variable per {PLATFORM}")))?;
                set(config, platform, text)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_with_its_own_kind() {
        for setting in SETTINGS {
            if let Fallback::Value(text) = setting.default {
                let mut config = Config::unfilled();
                let parsed = setting.kind.apply(&mut config, None, text);
                assert!(parsed.is_ok(), "{}={text}: {parsed:?}", setting.env);
            }
        }
    }

    #[test]
    fn defaults_fill_the_config_through_the_same_rows() {
        let mut config = Config::unfilled();
        for setting in SETTINGS {
            setting.load(&mut config, &HashMap::new()).unwrap();
        }
        assert_eq!(config.port, 3001);
        assert_eq!(config.connect_timeout, Duration::from_secs(10));
        assert_eq!(config.first_byte_timeout, Duration::from_secs(60));
        assert_eq!(config.body_read_timeout, Duration::from_secs(30));
        assert_eq!(config.auth_failures_per_minute, 30);
        assert!(config.stream_resume);
        assert_eq!(config.log_filter, "info");
        assert_eq!(config.log_format, LogFormat::Text);
        assert!(config.encryption_key.is_none() && config.api_key.is_none());
    }

    #[test]
    fn help_is_generated_from_every_row() {
        let help = settings_help();
        assert_eq!(help.lines().count(), SETTINGS.len() + 1);
        for (line, setting) in help.lines().skip(1).zip(SETTINGS) {
            assert!(line.contains(setting.env), "{line}");
            assert!(line.contains(setting.help), "{line}");
            assert!(
                line.ends_with(&format!("(default: {})", setting.default.text())),
                "{line}"
            );
        }
    }

    #[test]
    fn the_readme_lists_every_setting_with_its_default() {
        let readme = include_str!("../../README.md");
        for setting in SETTINGS {
            let row = match setting.default {
                Fallback::Value(text) => format!("| `{}` | `{text}`", setting.env),
                Fallback::Unset(_) | Fallback::Computed(_) => format!("| `{}` |", setting.env),
            };
            assert!(readme.contains(&row), "README.md has no row {row}");
        }
    }

    #[test]
    fn names_are_unique_and_families_say_so() {
        for (i, setting) in SETTINGS.iter().enumerate() {
            assert!(
                SETTINGS[..i].iter().all(|s| s.env != setting.env),
                "{} twice",
                setting.env
            );
            let family = matches!(setting.kind, Kind::PerPlatform(_));
            assert_eq!(family, setting.env.contains(PLATFORM), "{}", setting.env);
            if family {
                assert!(
                    matches!(setting.default, Fallback::Computed(_)),
                    "{}",
                    setting.env
                );
            }
        }
        let names: Vec<String> = SETTINGS
            .iter()
            .flat_map(|s| s.variables())
            .map(|(env, _)| env)
            .collect();
        for p in Platform::ALL {
            assert!(names.contains(&p.base_url_env()), "{p}");
            assert!(names.contains(&p.first_byte_timeout_env()), "{p}");
        }
    }

    #[test]
    fn an_invalid_value_names_its_variable_and_never_echoes_a_secret() {
        let bad = "not valid!";
        for setting in SETTINGS {
            if matches!(setting.kind, Kind::Path(_) | Kind::Text(_)) {
                continue; // any text is a path or a log filter
            }
            for (env, _) in setting.variables() {
                let vars = HashMap::from([(env.clone(), bad.to_owned())]);
                let err = setting
                    .load(&mut Config::unfilled(), &vars)
                    .expect_err(&env);
                assert!(err.0.starts_with(&env), "{err}");
                if ["ENCRYPTION_KEY", "FREELLMAPI_API_KEY", "METRICS_TOKEN"].contains(&setting.env)
                {
                    assert!(!err.0.contains(bad), "{err}");
                }
            }
        }
    }

    #[test]
    fn messages_keep_their_wording() {
        let load = |env: &str, value: &str| {
            let setting = SETTINGS.iter().find(|s| s.env == env).unwrap();
            let vars = HashMap::from([(env.to_owned(), value.to_owned())]);
            setting.load(&mut Config::unfilled(), &vars).unwrap_err().0
        };
        assert_eq!(
            load("HOST", "x"),
            "HOST=x is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0"
        );
        assert_eq!(
            load("PORT", "-1"),
            "PORT=-1 is not a valid non-negative number"
        );
        assert_eq!(
            load("UPSTREAM_TIMEOUT_SECS", "0"),
            "UPSTREAM_TIMEOUT_SECS must be at least 1 (seconds)"
        );
        assert_eq!(
            load("LOG_RETENTION_DAYS", "0"),
            "LOG_RETENTION_DAYS must be at least 1"
        );
        assert_eq!(
            load("STREAM_RESUME", "maybe"),
            "STREAM_RESUME=maybe: use on or off"
        );
        assert_eq!(
            load("LOG_FORMAT", "yaml"),
            "LOG_FORMAT=yaml: use text or json"
        );
        assert!(load("TRUSTED_PROXIES", "1.2.3.4, x").starts_with("TRUSTED_PROXIES: 'x' is not"));
    }
}
