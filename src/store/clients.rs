//! The `clients` and `client_usage` tables: client keys (only the SHA-256 of each key and a masked hint, never the
//! key), their limits and model allowlists, and the window counters written in the background so a client's use
//! survives a restart. Validation is the admin API's; nothing here runs on a request's critical path.

use diesel::prelude::*;

use super::schema::client_usage::dsl as cu;
use super::schema::clients::dsl as cl;
use super::{Conn, StoreError};

/// One client key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    /// Row id.
    pub id: i64,
    /// SHA-256 of the key, as lowercase hex.
    pub key_hash: String,
    /// The key's masked hint (`…abcd`).
    pub masked: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// What the owner set.
    pub settings: ClientSettings,
}

/// A client's settings, as created or changed through the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = super::schema::clients, treat_none_as_null = true)]
pub struct ClientSettings {
    /// The owner's name for it.
    pub name: String,
    /// Allowlist as a JSON array; `None` allows every model.
    pub models: Option<String>,
    /// Requests per minute.
    pub rpm: Option<i64>,
    /// Requests per day.
    pub rpd: Option<i64>,
    /// Tokens per minute.
    pub tpm: Option<i64>,
    /// Tokens per day.
    pub tpd: Option<i64>,
    /// Whether the key works.
    pub enabled: bool,
}

type Stored = (i64, String, String, i64, ClientSettings);

fn stored((id, key_hash, masked, created_at, settings): Stored) -> ClientRow {
    ClientRow {
        id,
        key_hash,
        masked,
        created_at,
        settings,
    }
}

/// The columns of a [`ClientRow`], in its order.
macro_rules! row_columns {
    () => {
        (
            cl::id,
            cl::key_hash,
            cl::masked,
            cl::created_at,
            (
                cl::name,
                cl::models,
                cl::rpm,
                cl::rpd,
                cl::tpm,
                cl::tpd,
                cl::enabled,
            ),
        )
    };
}

/// One client's saved window counters.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = super::schema::client_usage)]
pub struct UsageRow {
    /// The client.
    pub client_id: i64,
    /// Start of the minute window, Unix ms.
    pub minute_start: i64,
    /// Requests in the minute window.
    pub minute_requests: i64,
    /// Tokens in the minute window.
    pub minute_tokens: i64,
    /// Start of the day window, Unix ms.
    pub day_start: i64,
    /// Requests in the day window.
    pub day_requests: i64,
    /// Tokens in the day window.
    pub day_tokens: i64,
}

/// Every client, oldest first.
pub fn list(conn: &mut Conn) -> Result<Vec<ClientRow>, StoreError> {
    let rows: Vec<Stored> = cl::clients
        .order(cl::id.asc())
        .select(row_columns!())
        .load(conn)?;
    Ok(rows.into_iter().map(stored).collect())
}

/// One client, if it exists.
pub fn find(conn: &mut Conn, id: i64) -> Result<Option<ClientRow>, StoreError> {
    let row: Option<Stored> = cl::clients
        .find(id)
        .select(row_columns!())
        .get_result(conn)
        .optional()?;
    Ok(row.map(stored))
}

/// Stores a new client with its key's hash and hint; answers the stored row.
pub fn insert(
    conn: &mut Conn,
    settings: &ClientSettings,
    key_hash: &str,
    masked: &str,
    now_ms: i64,
) -> Result<ClientRow, StoreError> {
    super::transaction(conn, |conn| {
        diesel::insert_into(cl::clients)
            .values((
                settings,
                cl::key_hash.eq(key_hash),
                cl::masked.eq(masked),
                cl::created_at.eq(now_ms),
            ))
            .execute(conn)?;
        let row: Stored = cl::clients
            .filter(cl::key_hash.eq(key_hash))
            .select(row_columns!())
            .get_result(conn)?;
        Ok(stored(row))
    })
}

/// Replaces a client's settings; answers the stored row, or `None` when there is no such client.
pub fn update(
    conn: &mut Conn,
    id: i64,
    settings: &ClientSettings,
) -> Result<Option<ClientRow>, StoreError> {
    let changed = diesel::update(cl::clients.find(id))
        .set(settings)
        .execute(conn)?;
    if changed == 0 {
        return Ok(None);
    }
    find(conn, id)
}

/// Deletes a client and its counters; answers whether it existed.
pub fn delete(conn: &mut Conn, id: i64) -> Result<bool, StoreError> {
    super::transaction(conn, |conn| {
        diesel::delete(cu::client_usage.filter(cu::client_id.eq(id))).execute(conn)?;
        Ok(diesel::delete(cl::clients.find(id)).execute(conn)? > 0)
    })
}

/// Every client's saved counters.
pub fn usage(conn: &mut Conn) -> Result<Vec<UsageRow>, StoreError> {
    Ok(cu::client_usage.load(conn)?)
}

/// Inserts or replaces counters in one transaction, skipping clients deleted meanwhile.
pub fn save_usage(conn: &mut Conn, rows: &[UsageRow]) -> Result<(), StoreError> {
    super::transaction(conn, |conn| {
        let ids: Vec<i64> = cl::clients.select(cl::id).load(conn)?;
        for row in rows.iter().filter(|r| ids.contains(&r.client_id)) {
            diesel::replace_into(cu::client_usage)
                .values(row)
                .execute(conn)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    fn settings(name: &str) -> ClientSettings {
        ClientSettings {
            name: name.into(),
            models: Some("[\"auto\"]".into()),
            rpm: Some(5),
            rpd: None,
            tpm: None,
            tpd: Some(1000),
            enabled: true,
        }
    }

    #[test]
    fn clients_and_their_usage_are_stored_updated_and_deleted() {
        let db = TempDb::new();
        let mut c = db.conn();
        let row = insert(&mut c, &settings("app"), "ab12", "…abcd", 7).unwrap();
        assert_eq!((row.settings.name.as_str(), row.created_at), ("app", 7));
        assert_eq!(find(&mut c, row.id).unwrap(), Some(row.clone()));
        assert_eq!(list(&mut c).unwrap(), std::slice::from_ref(&row));
        let mut changed = settings("renamed");
        changed.enabled = false;
        let updated = update(&mut c, row.id, &changed).unwrap().unwrap();
        assert_eq!(updated.settings, changed);
        assert_eq!(update(&mut c, row.id + 9, &changed).unwrap(), None);
        let used = UsageRow {
            client_id: row.id,
            minute_start: 60_000,
            minute_requests: 2,
            minute_tokens: 30,
            day_start: 0,
            day_requests: 4,
            day_tokens: 90,
        };
        let gone = UsageRow {
            client_id: row.id + 9,
            ..used.clone()
        };
        save_usage(&mut c, &[used.clone(), gone]).unwrap();
        assert_eq!(usage(&mut c).unwrap(), [used]);
        assert!(delete(&mut c, row.id).unwrap());
        assert!(!delete(&mut c, row.id).unwrap());
        assert!(usage(&mut c).unwrap().is_empty());
    }
}
