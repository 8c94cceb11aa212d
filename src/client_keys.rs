//! Client keys in memory: every client (looked up by the SHA-256 of a presented key, so no request reads the
//! database), its limits and allowlist, and its window counters, saved in the background so use survives a
//! restart. It must never hold or log a key itself, and never write to the database on a request's path.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use crate::crypto;
use crate::error::ApiError;
use crate::hex;
use crate::routing::client_quota::{ClientLimits, ClientUsage, Used};
use crate::store::clients::{self as rows, ClientRow, UsageRow};
use crate::store::{Db, StoreError};
use crate::timefmt::now_unix_ms;

/// How often changed counters are saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// One client key's settings, as requests see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Row id.
    pub id: i64,
    /// The owner's name for it; what logs, analytics and metrics show.
    pub name: String,
    /// The key's masked hint.
    pub masked: String,
    /// Allowed `model` strings (ids, aliases, `platform/model`); `None` allows all.
    pub models: Option<Vec<String>>,
    /// Its limits.
    pub limits: ClientLimits,
    /// Whether the key works.
    pub enabled: bool,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl Client {
    /// Reads a stored row; an unreadable allowlist allows nothing rather than everything.
    pub fn from_row(row: &ClientRow) -> Client {
        let limit = |n: Option<i64>| n.map(|n| u64::try_from(n).unwrap_or(0));
        let models = row.settings.models.as_deref().map(|text| {
            serde_json::from_str::<Vec<String>>(text).unwrap_or_else(|e| {
                log::warn!(
                    "client '{}' has an unreadable model list ({e}); it may use none",
                    row.settings.name
                );
                Vec::new()
            })
        });
        Client {
            id: row.id,
            name: row.settings.name.clone(),
            masked: row.masked.clone(),
            models,
            limits: ClientLimits {
                rpm: limit(row.settings.rpm),
                rpd: limit(row.settings.rpd),
                tpm: limit(row.settings.tpm),
                tpd: limit(row.settings.tpd),
            },
            enabled: row.settings.enabled,
            created_at: row.created_at,
        }
    }

    /// Whether it may ask for `model` (compared as the client wrote it).
    pub fn allows(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|list| list.iter().any(|m| m == model))
    }
}

/// Who made a request, as the request guard authenticated it.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The unified key (or the metrics token): full access, no client limits.
    Owner,
    /// A client key.
    Client(Arc<Client>),
}

impl Caller {
    /// The client's name, for the request log and metrics; `None` for the owner.
    pub fn client_name(&self) -> Option<&str> {
        match self {
            Caller::Owner => None,
            Caller::Client(c) => Some(&c.name),
        }
    }
}

struct Entry {
    client: Arc<Client>,
    hash: String,
    usage: ClientUsage,
    dirty: bool,
}

/// Every client key, shared by all workers.
#[derive(Clone)]
pub struct ClientKeys {
    by_hash: Arc<DashMap<String, i64>>,
    clients: Arc<DashMap<i64, Entry>>,
    db: Db,
}

/// A new key: `freellmapi-` and 32 hex characters.
pub fn generate_key() -> String {
    format!("freellmapi-{}", crypto::random_hex(16))
}

/// The SHA-256 of a key, as lowercase hex: what is stored and looked up.
pub fn hash_key(key: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, key).as_ref())
}

impl ClientKeys {
    /// Loads every client and its saved counters.
    pub async fn load(db: Db) -> Result<ClientKeys, StoreError> {
        let (list, usage) = db
            .run(|conn| Ok((rows::list(conn)?, rows::usage(conn)?)))
            .await?;
        let keys = ClientKeys {
            by_hash: Arc::new(DashMap::new()),
            clients: Arc::new(DashMap::new()),
            db,
        };
        for row in &list {
            keys.put(row);
        }
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        for u in usage {
            if let Some(mut entry) = keys.clients.get_mut(&u.client_id) {
                entry.usage = ClientUsage {
                    minute_start: u.minute_start,
                    minute_requests: count(u.minute_requests),
                    minute_tokens: count(u.minute_tokens),
                    day_start: u.day_start,
                    day_requests: count(u.day_requests),
                    day_tokens: count(u.day_tokens),
                };
            }
        }
        Ok(keys)
    }

    /// Adds or replaces a client from its stored row; its counters are kept.
    pub fn put(&self, row: &ClientRow) {
        let client = Arc::new(Client::from_row(row));
        self.by_hash.insert(row.key_hash.clone(), row.id);
        self.clients
            .entry(row.id)
            .and_modify(|e| e.client = client.clone())
            .or_insert_with(|| Entry {
                client,
                hash: row.key_hash.clone(),
                usage: ClientUsage::default(),
                dirty: false,
            });
    }

    /// Forgets a client: its key stops working at once.
    pub fn remove(&self, id: i64) {
        if let Some((_, entry)) = self.clients.remove(&id) {
            self.by_hash.remove(&entry.hash);
        }
    }

    /// The enabled client whose key is `presented`, if any. The lookup is by hash, so its timing says nothing
    /// about any key.
    pub fn find(&self, presented: &[u8]) -> Option<Arc<Client>> {
        let id = *self.by_hash.get(&hash_key(presented))?;
        let entry = self.clients.get(&id)?;
        entry.client.enabled.then(|| entry.client.clone())
    }

    /// What a client has used in its current windows.
    pub fn used(&self, id: i64) -> Used {
        self.clients
            .get(&id)
            .map(|e| e.usage.used(now_unix_ms()))
            .unwrap_or_default()
    }

    /// Admits one request of `client` for `model`, estimated at `tokens`, and counts it; or the 403/429 to answer.
    pub fn admit(&self, client: &Client, model: &str, tokens: u64) -> Result<(), ApiError> {
        if !client.allows(model) {
            return Err(ApiError::model_not_allowed(model));
        }
        let Some(mut entry) = self.clients.get_mut(&client.id) else {
            return Err(ApiError::invalid_api_key());
        };
        let limits = entry.client.limits;
        entry
            .usage
            .admit(&limits, tokens, now_unix_ms())
            .map_err(|over| {
                ApiError::client_quota_exceeded(
                    over.retry_after_secs,
                    format!(
                        "This client key is past its {} limit; retry in {}s.",
                        over.limit, over.retry_after_secs
                    ),
                )
            })?;
        entry.dirty = true;
        Ok(())
    }

    /// Corrects a client's token count once a request's real usage is known (`delta` = actual − estimated).
    pub fn settle_tokens(&self, id: i64, delta: i64) {
        if delta == 0 {
            return;
        }
        if let Some(mut entry) = self.clients.get_mut(&id) {
            entry.usage.add_tokens(delta, now_unix_ms());
            entry.dirty = true;
        }
    }

    /// Saves changed counters.
    pub async fn save(&self) {
        let mut changed = Vec::new();
        for mut entry in self.clients.iter_mut() {
            if !entry.dirty {
                continue;
            }
            entry.dirty = false;
            let u = entry.usage;
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            changed.push(UsageRow {
                client_id: *entry.key(),
                minute_start: u.minute_start,
                minute_requests: n(u.minute_requests),
                minute_tokens: n(u.minute_tokens),
                day_start: u.day_start,
                day_requests: n(u.day_requests),
                day_tokens: n(u.day_tokens),
            });
        }
        if changed.is_empty() {
            return;
        }
        if let Err(e) = self
            .db
            .run(move |conn| rows::save_usage(conn, &changed))
            .await
        {
            log::warn!("could not save client key usage: {e}");
        }
    }

    /// Saves changed counters every second, off every request's path.
    pub fn save_in_background(&self) {
        let keys = self.clone();
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(SAVE_EVERY);
            loop {
                tick.tick().await;
                keys.save().await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::clients::ClientSettings;

    fn row(models: Option<&str>) -> ClientRow {
        ClientRow {
            id: 1,
            key_hash: hash_key(b"k"),
            masked: "…abcd".into(),
            created_at: 0,
            settings: ClientSettings {
                name: "app".into(),
                models: models.map(str::to_owned),
                rpm: Some(3),
                rpd: None,
                tpm: None,
                tpd: Some(-1),
                enabled: true,
            },
        }
    }

    #[test]
    fn allowlists_compare_the_model_as_written() {
        let all = Client::from_row(&row(None));
        assert!(all.allows("auto") && all.allows("groq/x"));
        let some = Client::from_row(&row(Some(r#"["fast","groq/x"]"#)));
        assert!(some.allows("fast") && some.allows("groq/x"));
        assert!(!some.allows("x") && !some.allows("auto"));
        assert!(!Client::from_row(&row(Some("nonsense"))).allows("auto"));
        assert_eq!(all.limits.rpm, Some(3));
        assert_eq!(all.limits.tpd, Some(0));
    }

    #[test]
    fn keys_are_hashed_and_look_like_unified_keys() {
        let key = generate_key();
        assert!(key.starts_with("freellmapi-") && key.len() == 11 + 32);
        assert_eq!(hash_key(b"abc").len(), 64);
        assert_eq!(
            hash_key(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
