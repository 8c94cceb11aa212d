//! The `budget_state` table: each (platform, model, key) budget's use still counting, its bench and what it
//! learned from the provider, so a restart neither re-spends a quota, nor forgets a cooldown, nor learns again.
//! A key's budget shared across its models is a row like any other, under the model [`KEY_WIDE`].

use crate::provider_key::KeyId;
use diesel::prelude::*;

use super::schema::budget_state::dsl as bs;
use super::schema::{budget_state, provider_keys};
use super::{Conn, StoreError};

/// The model of the row that holds a key's budget shared across its models. No model id is empty (custom keys
/// refuse one, no catalog entry has one), so it names no model; a release that predates key-wide budgets reads such a row
/// as a model no chain offers, and leaves it be.
pub const KEY_WIDE: &str = "";

/// One saved budget.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = budget_state)]
pub struct BudgetRow {
    /// Platform id.
    pub platform: String,
    /// Model id.
    pub model: String,
    /// Provider key id.
    pub key_id: KeyId,
    /// The UTC day of the save (days since the Unix epoch); with the two counts below, what releases before the
    /// `detail` column knew of the day window, still written so they read a budget right.
    pub day: i64,
    /// Requests counting in the day window.
    pub day_requests: i64,
    /// Tokens counting in the day window.
    pub day_tokens: i64,
    /// End of the bench, Unix ms, if one was active.
    pub cooldown_until_ms: Option<i64>,
    /// Whether the bench followed upstream failures rather than a rate limit.
    pub cooldown_outage: bool,
    /// Window use, learned limits and misses, as JSON (`routing::budget::Carried`).
    pub detail: String,
}

/// Every saved budget.
pub fn list(conn: &mut Conn) -> Result<Vec<BudgetRow>, StoreError> {
    Ok(bs::budget_state.load(conn)?)
}

/// Inserts or replaces `rows` in one transaction, skipping rows whose key has been deleted meanwhile.
pub fn save(conn: &mut Conn, rows: &[BudgetRow]) -> Result<(), StoreError> {
    super::transaction(conn, |conn| {
        let keys: Vec<KeyId> = provider_keys::table.select(provider_keys::id).load(conn)?;
        for row in rows.iter().filter(|r| keys.contains(&r.key_id)) {
            diesel::replace_into(bs::budget_state)
                .values(row)
                .execute(conn)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Sealed;
    use crate::store::provider_keys::{insert, NewKeyRow};
    use crate::store::test_db::TempDb;

    fn row(key_id: KeyId, day_requests: i64) -> BudgetRow {
        BudgetRow {
            platform: "groq".into(),
            model: "m".into(),
            key_id,
            day: 20_000,
            day_requests,
            day_tokens: 10 * day_requests,
            cooldown_until_ms: Some(1_800_000_000_000),
            cooldown_outage: false,
            detail: "{}".into(),
        }
    }

    #[test]
    fn saves_replaces_and_forgets_deleted_keys() {
        let db = TempDb::new();
        let mut c = db.conn();
        let new = NewKeyRow {
            platform: "groq",
            label: "",
            key_hint: "…abcd",
            base_url: None,
            models: None,
            now_ms: 1,
        };
        let key = insert(&mut c, &new, |_| Sealed {
            nonce: [0; 12],
            ciphertext: vec![1],
        })
        .unwrap();
        save(&mut c, &[row(key.id, 3), row(KeyId(key.id.0 + 100), 1)]).unwrap();
        assert_eq!(list(&mut c).unwrap(), [row(key.id, 3)]);
        save(&mut c, &[row(key.id, 5)]).unwrap();
        assert_eq!(list(&mut c).unwrap(), [row(key.id, 5)]);
        crate::store::provider_keys::delete(&mut c, key.id).unwrap();
        assert!(list(&mut c).unwrap().is_empty(), "cascades with the key");
    }
}
