//! The `provider_keys` table: sealed provider keys with their label, status and (for custom keys) base URL and
//! models. Listing never decrypts: the masked hint is stored at insert time.

use diesel::prelude::*;

use super::schema::provider_keys::dsl as pk;
use super::{settings, Conn, StoreError};
use crate::crypto::Sealed;
use crate::provider_key::{KeyId, KeyStatus};

/// One stored key.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct KeyRow {
    /// Row id.
    pub id: KeyId,
    /// Platform id.
    pub platform: String,
    /// User label.
    pub label: String,
    /// Sealed key.
    pub ciphertext: Vec<u8>,
    /// Nonce of the sealing.
    pub nonce: Vec<u8>,
    /// Masked form shown to users.
    pub key_hint: String,
    /// Custom keys: their base URL.
    pub base_url: Option<String>,
    /// Custom keys: JSON array of their models.
    pub models: Option<String>,
    /// `unknown healthy rate_limited invalid error`.
    pub status: KeyStatus,
    /// Last error seen for this key.
    pub last_error: Option<String>,
    /// Last probe or status change (Unix ms).
    pub last_checked_at: Option<i64>,
    /// Whether routing may use it.
    pub enabled: bool,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

/// The unsealed parts of a new key.
#[derive(Debug, Clone)]
pub struct NewKeyRow<'a> {
    /// Platform id.
    pub platform: &'a str,
    /// User label.
    pub label: &'a str,
    /// Masked form.
    pub key_hint: &'a str,
    /// Custom keys: base URL.
    pub base_url: Option<&'a str>,
    /// Custom keys: JSON array of models.
    pub models: Option<&'a str>,
    /// Creation time (Unix ms).
    pub now_ms: i64,
}

/// Every key, oldest first.
pub fn list(conn: &mut Conn) -> Result<Vec<KeyRow>, StoreError> {
    Ok(pk::provider_keys.order(pk::id.asc()).load(conn)?)
}

/// One key.
pub fn get(conn: &mut Conn, id: KeyId) -> Result<Option<KeyRow>, StoreError> {
    Ok(pk::provider_keys.find(id).get_result(conn).optional()?)
}

/// Inserts a key, sealing it with its new row id as associated data, in one transaction.
pub fn insert(
    conn: &mut Conn,
    new: &NewKeyRow<'_>,
    seal: impl FnOnce(KeyId) -> Sealed,
) -> Result<KeyRow, StoreError> {
    super::transaction(conn, |conn| {
        diesel::insert_into(pk::provider_keys)
            .values((
                pk::platform.eq(new.platform),
                pk::label.eq(new.label),
                pk::ciphertext.eq(Vec::<u8>::new()),
                pk::nonce.eq(Vec::<u8>::new()),
                pk::key_hint.eq(new.key_hint),
                pk::base_url.eq(new.base_url),
                pk::models.eq(new.models),
                pk::created_at.eq(new.now_ms),
                pk::updated_at.eq(new.now_ms),
            ))
            .execute(conn)?;
        let id = KeyId(
            pk::provider_keys
                .select(diesel::dsl::max(pk::id))
                .get_result::<Option<i64>>(conn)?
                .unwrap_or(0),
        );
        let sealed = seal(id);
        diesel::update(pk::provider_keys.find(id))
            .set((
                pk::ciphertext.eq(&sealed.ciphertext),
                pk::nonce.eq(&sealed.nonce[..]),
            ))
            .execute(conn)?;
        settings::bump_revision(conn)?;
        Ok(pk::provider_keys.find(id).get_result(conn)?)
    })
}

/// Changes the label and/or enabled flag; `None` if the key does not exist.
pub fn update(
    conn: &mut Conn,
    id: KeyId,
    label: Option<&str>,
    enabled: Option<bool>,
    now_ms: i64,
) -> Result<Option<KeyRow>, StoreError> {
    super::transaction(conn, |conn| {
        if get(conn, id)?.is_none() {
            return Ok(None);
        }
        if let Some(label) = label {
            diesel::update(pk::provider_keys.find(id))
                .set(pk::label.eq(label))
                .execute(conn)?;
        }
        if let Some(enabled) = enabled {
            diesel::update(pk::provider_keys.find(id))
                .set(pk::enabled.eq(enabled))
                .execute(conn)?;
        }
        diesel::update(pk::provider_keys.find(id))
            .set(pk::updated_at.eq(now_ms))
            .execute(conn)?;
        settings::bump_revision(conn)?;
        get(conn, id)
    })
}

/// Replaces a key's sealed secret (encryption-key rotation); the caller runs it inside its transaction.
pub fn reseal(conn: &mut Conn, id: KeyId, sealed: &Sealed) -> Result<(), StoreError> {
    diesel::update(pk::provider_keys.find(id))
        .set((
            pk::nonce.eq(&sealed.nonce[..]),
            pk::ciphertext.eq(&sealed.ciphertext),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes a key; whether it existed.
pub fn delete(conn: &mut Conn, id: KeyId) -> Result<bool, StoreError> {
    super::transaction(conn, |conn| {
        let deleted = diesel::delete(pk::provider_keys.find(id)).execute(conn)? > 0;
        if deleted {
            settings::bump_revision(conn)?;
        }
        Ok(deleted)
    })
}

/// Records a key's health after a probe or a telling failure.
pub fn set_status(
    conn: &mut Conn,
    id: KeyId,
    status: KeyStatus,
    last_error: Option<&str>,
    checked_at_ms: i64,
) -> Result<(), StoreError> {
    diesel::update(pk::provider_keys.find(id))
        .set((
            pk::status.eq(status),
            pk::last_error.eq(last_error),
            pk::last_checked_at.eq(checked_at_ms),
        ))
        .execute(conn)?;
    settings::bump_revision(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    fn new_row() -> NewKeyRow<'static> {
        NewKeyRow {
            platform: "groq",
            label: "main",
            key_hint: "…abcd",
            base_url: None,
            models: None,
            now_ms: 5,
        }
    }

    #[test]
    fn insert_seals_with_the_new_id() {
        let db = TempDb::new();
        let mut c = db.conn();
        let row = insert(&mut c, &new_row(), |id| Sealed {
            nonce: [id.0 as u8; 12],
            ciphertext: vec![1, 2, 3],
        })
        .unwrap();
        assert_eq!(row.nonce, vec![row.id.0 as u8; 12]);
        assert_eq!(row.ciphertext, vec![1, 2, 3]);
        assert_eq!(row.status, KeyStatus::Unknown);
        assert!(row.enabled);
    }

    #[test]
    fn update_status_delete() {
        let db = TempDb::new();
        let mut c = db.conn();
        let row = insert(&mut c, &new_row(), |_| Sealed {
            nonce: [0; 12],
            ciphertext: vec![],
        })
        .unwrap();
        let updated = update(&mut c, row.id, Some("x"), Some(false), 9)
            .unwrap()
            .unwrap();
        assert_eq!(
            (updated.label.as_str(), updated.enabled, updated.updated_at),
            ("x", false, 9)
        );
        assert!(update(&mut c, KeyId(999), None, None, 9).unwrap().is_none());
        set_status(
            &mut c,
            row.id,
            KeyStatus::Invalid,
            Some("401 Invalid API Key"),
            10,
        )
        .unwrap();
        let got = get(&mut c, row.id).unwrap().unwrap();
        assert_eq!(
            (got.status.as_str(), got.last_checked_at),
            ("invalid", Some(10))
        );
        let bogus = diesel::sql_query("UPDATE provider_keys SET status = 'bogus' WHERE id = ?")
            .bind::<diesel::sql_types::BigInt, _>(row.id)
            .execute(&mut c);
        assert!(bogus.is_err(), "the CHECK constraint guards statuses");
        assert!(delete(&mut c, row.id).unwrap());
        assert!(!delete(&mut c, row.id).unwrap());
    }
}
