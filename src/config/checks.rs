//! How a setting's text is checked, and what an invalid value is told: the parsers the settings table's kinds
//! and rows use, and `Why`, the shape of each message before the variable's name goes in front.
//!
//! No variable names or defaults live here (`table.rs` has them; `ENCRYPTION_KEY` is here only because
//! `parse_encryption_key` also serves `--new-key` and the key file), and nothing here reads the environment.

use std::net::IpAddr;

use super::typed::ConfigError;

/// The variable `parse_encryption_key`'s message names.
pub(super) const ENCRYPTION_KEY: &str = "ENCRYPTION_KEY";

/// What is wrong with a value; `Why::naming` puts the variable's name in front.
#[derive(Debug)]
pub(super) enum Why {
    /// `NAME=value <text>`.
    Value(String),
    /// `NAME=value: <text>`.
    Hint(String),
    /// `NAME <text>`: the value is not repeated (secrets, lower bounds).
    Rule(String),
    /// `NAME: <text>`, the text naming the list item that is wrong.
    Item(String),
}

impl Why {
    /// The message for the variable `env` set to `value`.
    pub(super) fn naming(self, env: &str, value: &str) -> ConfigError {
        ConfigError(match self {
            Why::Value(text) => format!("{env}={value} {text}"),
            Why::Hint(text) => format!("{env}={value}: {text}"),
            Why::Rule(text) => format!("{env} {text}"),
            Why::Item(text) => format!("{env}: {text}"),
        })
    }
}

/// A listen address.
pub(super) fn ip(text: &str) -> Result<IpAddr, Why> {
    text.parse()
        .map_err(|_| Why::Value("is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0".to_owned()))
}

/// A number of the type the field holds.
pub(super) fn number<T: std::str::FromStr>(text: &str) -> Result<T, Why> {
    text.parse()
        .map_err(|_| Why::Value("is not a valid non-negative number".to_owned()))
}

/// Refuses 0 where a zero limit would make the feature refuse everything.
pub(super) fn at_least_one(n: u64, unit: &str) -> Result<u64, Why> {
    if n == 0 {
        return Err(Why::Rule(format!("must be at least 1{unit}")));
    }
    Ok(n)
}

/// Parses an on/off setting.
pub(super) fn switch(text: &str) -> Result<bool, Why> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(Why::Hint("use on or off".to_owned())),
    }
}

/// Parses a 64-hex-char AES-256 key (`ENCRYPTION_KEY`, `--new-key`, the key file); the message never shows it.
pub fn parse_encryption_key(value: &str) -> Result<[u8; 32], ConfigError> {
    encryption_key(value).map_err(|why| why.naming(ENCRYPTION_KEY, ""))
}

/// The check behind `parse_encryption_key`, as the table's row uses it.
pub(super) fn encryption_key(value: &str) -> Result<[u8; 32], Why> {
    let bad = || {
        Why::Rule(
            "must be exactly 64 hex characters (32 bytes). Generate one with `freellmapi gen-key`, \
             or unset it to use the key file in the data directory."
                .to_owned(),
        )
    };
    let bytes = crate::hex::decode(value).ok_or_else(bad)?;
    bytes.try_into().map_err(|_| bad())
}

/// Accepts a fixed unified key; the message never shows it.
pub(super) fn api_key(value: &str) -> Result<String, Why> {
    if !value.starts_with("freellmapi-") || value.len() < "freellmapi-".len() + 16 {
        return Err(Why::Rule(
            "must start with 'freellmapi-' followed by at least 16 characters; \
             unset it to have one generated (`freellmapi token` prints it)."
                .to_owned(),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Why::Rule(
            "must not contain spaces or control characters".to_owned(),
        ));
    }
    Ok(value.to_owned())
}

/// Accepts a `METRICS_TOKEN` long enough not to be guessed and usable in an `Authorization` header.
pub(super) fn metrics_token(token: &str) -> Result<String, Why> {
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Why::Rule(
            "must be at least 16 visible ASCII characters (no spaces); e.g. the output of \
             `freellmapi gen-key`"
                .to_owned(),
        ));
    }
    Ok(token.to_owned())
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

/// Splits a comma-separated list, dropping empty items.
fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Parses `TRUSTED_PROXIES`: IP addresses separated by commas.
pub(super) fn trusted_proxies(list: &str) -> Result<Vec<IpAddr>, Why> {
    items(list)
        .map(|a| {
            a.parse().map_err(|_| {
                Why::Item(format!(
                    "'{a}' is not an IP address; list the proxies' addresses, e.g. 127.0.0.1,::1"
                ))
            })
        })
        .collect()
}

/// Parses `CORS_ALLOWED_ORIGINS`: `*`, or comma-separated `scheme://host[:port]` origins.
pub(super) fn origins(list: &str) -> Result<Vec<String>, Why> {
    items(list)
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
                Err(Why::Item(format!(
                    "'{origin}' is not an origin; use e.g. https://chat.example.com (no path) or *"
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_encryption_key_is_named_but_never_shown() {
        let err = parse_encryption_key("abc123").unwrap_err().0;
        assert!(
            err.starts_with("ENCRYPTION_KEY must be exactly 64 hex characters"),
            "{err}"
        );
        assert!(!err.contains("abc123"), "{err}");
        assert_eq!(parse_encryption_key(&"ab".repeat(32)), Ok([0xab; 32]));
    }

    #[test]
    fn list_items_are_trimmed_and_empty_ones_dropped() {
        assert_eq!(items(" a, ,b ,").collect::<Vec<_>>(), ["a", "b"]);
    }
}
