//! Provider-key management shared by the CLI and the admin API: validation, duplicate detection, sealing, and
//! the masked view shown to users. Key material is never logged, returned or echoed in an error.

use crate::provider_key::{KeyId, KeyStatus};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use diesel::Connection;
use serde::{Deserialize, Serialize};

use crate::catalog::{Capabilities, Limits, ModelKind};
use crate::config::validate_base_url;
use crate::crypto::{key_aad, mask, Cipher};
use crate::platform::Platform;
use crate::store::provider_keys::{KeyRow, NewKeyRow};
use crate::store::{chain, provider_keys as table, Conn, StoreError};
use crate::timefmt::{iso8601_ms, now_unix_ms};

/// A model served by a custom key, with optional budgets (an extension: plain ids are accepted too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub struct CustomModel {
    /// Model id as the server names it.
    pub id: String,
    /// Budgets, where the user gave some.
    #[serde(flatten)]
    pub limits: Limits,
    /// Context window, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<u32>,
    /// Chat (the default) or embedding.
    #[serde(default, rename = "type", skip_serializing_if = "is_chat")]
    pub kind: ModelKind,
    /// Whether it calls tools; unstated counts as yes (the user added the model on purpose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    /// Whether it reads images; unstated counts as yes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<bool>,
    /// Whether it honours structured output; unstated counts as yes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<bool>,
}

impl CustomModel {
    /// A chat model known only by its id (listed by the server or typed by hand): no budgets, and every
    /// capability, since nothing is stated.
    pub fn named(id: String) -> CustomModel {
        CustomModel {
            id,
            limits: Limits::default(),
            context: None,
            kind: ModelKind::Chat,
            tools: None,
            vision: None,
            json: None,
        }
    }

    /// What it can do: what the user stated, and yes where they stated nothing.
    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            tools: self.tools.unwrap_or(true),
            vision: self.vision.unwrap_or(true),
            json: self.json.unwrap_or(true),
            reasoning: false,
        }
    }
}

fn is_chat(kind: &ModelKind) -> bool {
    *kind == ModelKind::Chat
}

/// A custom model given in full, as read from JSON.
#[derive(Deserialize)]
struct CustomModelFields {
    id: String,
    #[serde(flatten)]
    limits: Limits,
    #[serde(default)]
    context: Option<u32>,
    #[serde(default, rename = "type")]
    kind: ModelKind,
    #[serde(default)]
    tools: Option<bool>,
    #[serde(default)]
    vision: Option<bool>,
    #[serde(default)]
    json: Option<bool>,
}

impl TryFrom<serde_json::Value> for CustomModel {
    type Error = String;

    /// A plain id, or an object whose fields are checked one by one, so a bad field is named in the error.
    fn try_from(value: serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::String(id) => Ok(CustomModel::named(id)),
            value @ serde_json::Value::Object(_) => {
                let fields: CustomModelFields =
                    serde_json::from_value(value).map_err(|e| format!("a model entry: {e}"))?;
                Ok(CustomModel {
                    id: fields.id,
                    limits: fields.limits,
                    context: fields.context,
                    kind: fields.kind,
                    tools: fields.tools,
                    vision: fields.vision,
                    json: fields.json,
                })
            }
            _ => Err("a model is an id or an object with an id".to_owned()),
        }
    }
}

/// A key as `GET /api/keys` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyView {
    /// Row id.
    pub id: KeyId,
    /// Platform id.
    pub platform: String,
    /// User label.
    pub label: String,
    /// At most the last 4 characters.
    pub masked: String,
    /// `unknown healthy rate_limited invalid error`.
    pub status: KeyStatus,
    /// Last probe or status change.
    pub last_checked_at: Option<String>,
    /// Last error seen.
    pub last_error: Option<String>,
    /// Whether routing may use it.
    pub enabled: bool,
    /// Creation time.
    pub created_at: String,
    /// Custom keys: base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Custom keys: models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<CustomModel>>,
}

impl From<KeyRow> for KeyView {
    fn from(row: KeyRow) -> Self {
        KeyView {
            id: row.id,
            platform: row.platform,
            label: row.label,
            masked: row.key_hint,
            status: row.status,
            last_checked_at: row.last_checked_at.map(iso8601_ms),
            last_error: row.last_error,
            enabled: row.enabled,
            created_at: iso8601_ms(row.created_at),
            base_url: row.base_url.map(|url| without_userinfo(&url)),
            models: row.models.and_then(|m| serde_json::from_str(&m).ok()),
        }
    }
}

/// Where a URL's authority (`user:password@host:port`) starts and ends.
fn authority(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let len = url[start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - start);
    Some((start, start + len))
}

/// Whether a URL names a user or password before its host.
fn has_userinfo(url: &str) -> bool {
    authority(url).is_some_and(|(start, end)| url[start..end].contains('@'))
}

/// A URL with any user name and password replaced by `***`, for showing a key stored before such URLs were
/// refused.
fn without_userinfo(url: &str) -> String {
    match authority(url) {
        Some((start, end)) if url[start..end].contains('@') => {
            let host_at = url[start..end].rfind('@').map_or(start, |at| start + at);
            format!("{}***{}", &url[..start], &url[host_at..])
        }
        _ => url.to_owned(),
    }
}

/// Whether a base URL names the address `listen` serves, so requests sent there would come straight back: the
/// same port, and the same IP, or `localhost`, a loopback or the unspecified address where `listen` takes
/// those. Other names for this host are caught by the hop header when a request comes back.
pub fn leads_to(url: &str, listen: SocketAddr) -> bool {
    let Some((start, end)) = authority(url) else {
        return false;
    };
    let host_port = url[start..end].rsplit('@').next().unwrap_or_default();
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse::<u16>().ok()),
        _ => (host_port, None),
    };
    let port = port.unwrap_or(if url.starts_with("https://") { 443 } else { 80 });
    if port != listen.port() {
        return false;
    }
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let loopback = host == "localhost" || host.ends_with(".localhost");
    let reached: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => vec![ip],
        Ok(_) => vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
        Err(_) if loopback => vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
        Err(_) => return false,
    };
    reached
        .iter()
        .any(|ip| *ip == listen.ip() || (listen.ip().is_unspecified() && ip.is_loopback()))
}

/// A key to add.
#[derive(Debug, Clone, Deserialize)]
pub struct NewKey {
    /// Platform id.
    pub platform: String,
    /// The provider key.
    pub key: String,
    /// Optional label.
    #[serde(default)]
    pub label: Option<String>,
    /// Custom keys: base URL.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Custom keys: models.
    #[serde(default)]
    pub models: Vec<CustomModel>,
}

/// Why a key was not added.
#[derive(Debug)]
pub enum AddKeyError {
    /// Bad input; the message says what.
    Invalid(String),
    /// The same key is already stored.
    Conflict(String),
    /// The database failed.
    Store(StoreError),
}

impl From<StoreError> for AddKeyError {
    fn from(e: StoreError) -> Self {
        AddKeyError::Store(e)
    }
}

impl std::fmt::Display for AddKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddKeyError::Invalid(m) | AddKeyError::Conflict(m) => f.write_str(m),
            AddKeyError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// A key's fields once checked (everything but a custom key's models and duplicates).
pub struct Checked<'a> {
    /// Its platform.
    pub platform: Platform,
    /// The provider key, trimmed.
    pub secret: &'a str,
    /// A custom key's base URL, trimmed, without a trailing slash.
    pub base_url: Option<&'a str>,
}

/// Checks a key's platform, secret and base URL without touching the database, so a custom key's models can be
/// discovered from a URL already known to be acceptable.
pub fn check(new: &NewKey) -> Result<Checked<'_>, AddKeyError> {
    let platform: Platform = new
        .platform
        .trim()
        .parse()
        .map_err(|e: crate::platform::UnknownPlatform| AddKeyError::Invalid(e.to_string()))?;
    let secret = new.key.trim();
    if secret.is_empty() {
        return Err(AddKeyError::Invalid("'key' must not be empty".to_owned()));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AddKeyError::Invalid(
            "'key' may hold only visible ASCII characters (no spaces, control or non-ASCII characters): \
             it is sent in an HTTP header"
                .to_owned(),
        ));
    }
    if platform == Platform::Cloudflare {
        let valid = secret
            .split_once(':')
            .is_some_and(|(account, token)| !account.is_empty() && !token.is_empty());
        if !valid {
            return Err(AddKeyError::Invalid(
                "a cloudflare key must be ACCOUNT_ID:API_TOKEN".to_owned(),
            ));
        }
    }
    let base_url = new
        .base_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| u.trim_end_matches('/'));
    if platform == Platform::Custom {
        let url = base_url
            .ok_or_else(|| AddKeyError::Invalid("a custom key needs 'base_url'".to_owned()))?;
        validate_base_url(url).map_err(|why| AddKeyError::Invalid(format!("'base_url' {why}")))?;
        if has_userinfo(url) {
            return Err(AddKeyError::Invalid(
                "'base_url' must not carry a user name or password (user:password@host): the gateway would \
                 show it in clear. Put the server's credential in 'key'; it is stored encrypted and sent as \
                 'Authorization: Bearer <key>'."
                    .to_owned(),
            ));
        }
    } else if base_url.is_some() || !new.models.is_empty() {
        return Err(AddKeyError::Invalid(
            "'base_url' and 'models' are only for the custom platform".to_owned(),
        ));
    }
    Ok(Checked {
        platform,
        secret,
        base_url,
    })
}

/// Whether a key is a custom key given without models, whose models are to be listed from its server first.
pub fn wants_discovery(new: &NewKey) -> bool {
    matches!(new.platform.trim().parse(), Ok(Platform::Custom)) && new.models.is_empty()
}

/// Validates, de-duplicates and stores a key; custom models join the end of the chain.
pub fn add(conn: &mut Conn, cipher: &Cipher, new: NewKey) -> Result<KeyView, AddKeyError> {
    let Checked {
        platform,
        secret,
        base_url,
    } = check(&new)?;
    if platform == Platform::Custom
        && (new.models.is_empty() || new.models.iter().any(|m| m.id.trim().is_empty()))
    {
        return Err(AddKeyError::Invalid(
            "a custom key needs 'models': a non-empty list of model ids".to_owned(),
        ));
    }
    for row in table::list(conn)?
        .iter()
        .filter(|r| r.platform == platform.id())
    {
        let same_url = row.base_url.as_deref() == base_url;
        let stored = cipher.open(&row.nonce, &row.ciphertext, &key_aad(row.id, &row.platform));
        if same_url && stored.is_ok_and(|s| s == secret) {
            return Err(AddKeyError::Conflict(format!(
                "this {platform} key is already stored as key {}",
                row.id
            )));
        }
    }
    let models_json = (platform == Platform::Custom)
        .then(|| serde_json::to_string(&new.models))
        .transpose()
        .map_err(|e| AddKeyError::Invalid(e.to_string()))?;
    let label = new.label.as_deref().map(str::trim).unwrap_or_default();
    let hint = mask(secret);
    let row = conn.transaction(|conn| {
        let row = table::insert(
            conn,
            &NewKeyRow {
                platform: platform.id(),
                label,
                key_hint: &hint,
                base_url,
                models: models_json.as_deref(),
                now_ms: now_unix_ms(),
            },
            |id| cipher.seal(secret.as_bytes(), &key_aad(id, platform.id())),
        )?;
        if platform == Platform::Custom {
            let entries: Vec<(String, String)> = new
                .models
                .iter()
                .filter(|m| m.kind == ModelKind::Chat)
                .map(|m| (platform.id().to_owned(), m.id.trim().to_owned()))
                .collect();
            chain::append(conn, &entries)?;
        }
        Ok::<_, StoreError>(row)
    })?;
    Ok(row.into())
}

/// Every key, masked.
pub fn list(conn: &mut Conn) -> Result<Vec<KeyView>, StoreError> {
    Ok(table::list(conn)?.into_iter().map(KeyView::from).collect())
}

/// One key, masked.
pub fn get(conn: &mut Conn, id: KeyId) -> Result<Option<KeyView>, StoreError> {
    Ok(table::get(conn, id)?.map(KeyView::from))
}

/// Changes label and/or enabled; `None` if absent.
pub fn update(
    conn: &mut Conn,
    id: KeyId,
    label: Option<&str>,
    enabled: Option<bool>,
) -> Result<Option<KeyView>, StoreError> {
    Ok(table::update(conn, id, label.map(str::trim), enabled, now_unix_ms())?.map(KeyView::from))
}

/// Deletes a key; whether it existed.
pub fn remove(conn: &mut Conn, id: KeyId) -> Result<bool, StoreError> {
    table::delete(conn, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::day_window::DayWindow;
    use crate::store::test_db::TempDb;

    fn new(platform: &str, key: &str) -> NewKey {
        NewKey {
            platform: platform.into(),
            key: key.into(),
            label: None,
            base_url: None,
            models: vec![],
        }
    }

    #[test]
    fn adds_masked_and_rejects_duplicates() {
        let db = TempDb::new();
        let mut c = db.conn();
        let cipher = Cipher::new(&[3; 32]);
        let view = add(
            &mut c,
            &cipher,
            new("groq", " gsk_abcdefghijklmnopqrstuvwx "),
        )
        .unwrap();
        assert_eq!(view.masked, "…uvwx");
        assert_eq!(view.status, KeyStatus::Unknown);
        let json = serde_json::to_string(&list(&mut c).unwrap()).unwrap();
        assert!(!json.contains("gsk_abcdefghijklmnopqrstuvwx"));
        assert!(matches!(
            add(&mut c, &cipher, new("groq", "gsk_abcdefghijklmnopqrstuvwx")),
            Err(AddKeyError::Conflict(_))
        ));
        assert!(add(
            &mut c,
            &cipher,
            new("cerebras", "gsk_abcdefghijklmnopqrstuvwx")
        )
        .is_ok());
    }

    #[test]
    fn validates_input() {
        let db = TempDb::new();
        let mut c = db.conn();
        let cipher = Cipher::new(&[3; 32]);
        for bad in [
            new("openai", "k"),
            new("groq", "  "),
            new("groq", "a b"),
            new("groq", "caf\u{e9}1234"),
            new("groq", "del\u{7f}1234"),
            new("cloudflare", "token-only"),
        ] {
            assert!(matches!(
                add(&mut c, &cipher, bad),
                Err(AddKeyError::Invalid(_))
            ));
        }
        let mut custom = new("custom", "k");
        assert!(matches!(
            add(&mut c, &cipher, custom.clone()),
            Err(AddKeyError::Invalid(_))
        ));
        custom.base_url = Some("ftp://x".into());
        custom.models = vec![CustomModel::named("m".into())];
        assert!(matches!(
            add(&mut c, &cipher, custom.clone()),
            Err(AddKeyError::Invalid(_))
        ));
        let mut groq = new("groq", "k1234567");
        groq.base_url = Some("http://x".into());
        assert!(matches!(
            add(&mut c, &cipher, groq),
            Err(AddKeyError::Invalid(_))
        ));
    }

    #[test]
    fn userinfo_in_a_base_url_is_found_and_hidden() {
        assert!(has_userinfo("http://user:pw@127.0.0.1:1/v1"));
        assert!(has_userinfo("https://token@host"));
        assert!(!has_userinfo("http://127.0.0.1:1/v1?to=a@b"));
        assert!(!has_userinfo("http://host/a@b"));
        assert_eq!(
            without_userinfo("http://user:s3cret@127.0.0.1:1/v1"),
            "http://***@127.0.0.1:1/v1"
        );
        assert_eq!(
            without_userinfo("http://127.0.0.1:1/v1"),
            "http://127.0.0.1:1/v1"
        );
        let db = TempDb::new();
        let mut c = db.conn();
        let mut custom = new("custom", "k");
        custom.base_url = Some("http://user:s3cret@127.0.0.1:1/v1".into());
        custom.models = vec![CustomModel::named("m".into())];
        let refused = add(&mut c, &Cipher::new(&[3; 32]), custom).err();
        assert!(
            matches!(&refused, Some(AddKeyError::Invalid(m)) if m.contains("'key'") && !m.contains("s3cret")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_base_url_on_the_listen_address_leads_back() {
        let local: SocketAddr = "127.0.0.1:3001".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:3001".parse().unwrap();
        for url in [
            "http://127.0.0.1:3001/v1",
            "http://localhost:3001/v1",
            "http://LOCALHOST.:3001",
            "http://0.0.0.0:3001/v1",
            "http://user@127.0.0.1:3001/v1",
        ] {
            assert!(leads_to(url, local), "{url}");
            assert!(leads_to(url, any), "{url}");
        }
        assert!(leads_to("http://[::1]:3001/v1", any));
        assert!(!leads_to("http://[::1]:3001/v1", local));
        assert!(!leads_to("http://127.0.0.1:3002/v1", local));
        assert!(!leads_to("http://127.0.0.1/v1", local));
        assert!(leads_to(
            "http://127.0.0.1/v1",
            "127.0.0.1:80".parse().unwrap()
        ));
        assert!(!leads_to("https://api.groq.com/openai/v1", local));
        assert!(!leads_to("http://127.0.0.2:3001/v1", local));
        assert!(leads_to("http://127.0.0.2:3001/v1", any));
    }

    #[test]
    fn custom_models_accept_ids_or_budgets_and_join_the_chain() {
        let db = TempDb::new();
        let mut c = db.conn();
        let cipher = Cipher::new(&[3; 32]);
        let body = r#"{"platform":"custom","key":"k1","base_url":"http://127.0.0.1:9/v1/","models":["a",{"id":"b","rpm":2}]}"#;
        let view = add(&mut c, &cipher, serde_json::from_str(body).unwrap()).unwrap();
        assert_eq!(view.base_url.as_deref(), Some("http://127.0.0.1:9/v1"));
        let models = view.models.unwrap();
        assert_eq!(models[1].limits.rpm, Some(2));
        let chain: Vec<String> = chain::list(&mut c)
            .unwrap()
            .into_iter()
            .map(|r| format!("{}/{}", r.platform, r.model))
            .collect();
        assert_eq!(chain, ["custom/a", "custom/b"]);
    }

    #[test]
    fn a_bad_model_field_is_named() {
        let bad = r#"[{"id":"b","day_window":"weekly"}]"#;
        let e = serde_json::from_str::<Vec<CustomModel>>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `weekly`"), "{e}");
        let fine = r#"[{"id":"b","day_window":"midnight-utc","rpd":5}]"#;
        let models: Vec<CustomModel> = serde_json::from_str(fine).unwrap();
        assert_eq!(models[0].limits.day_window, Some(DayWindow::MidnightUtc));
        assert!(serde_json::from_str::<Vec<CustomModel>>("[3]").is_err());
    }
}
