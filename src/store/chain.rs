//! The `fallback_chain` table: the ordered (platform, model) list `auto` walks.

use diesel::prelude::*;

use super::schema::fallback_chain::dsl as fc;
use super::{settings, Conn, StoreError};

/// One chain entry.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ChainRow {
    /// Priority; lower is tried first.
    pub position: i64,
    /// Platform id.
    pub platform: String,
    /// Model id.
    pub model: String,
    /// Whether `auto` uses it.
    pub enabled: bool,
}

/// The chain in priority order.
pub fn list(conn: &mut Conn) -> Result<Vec<ChainRow>, StoreError> {
    Ok(fc::fallback_chain.order(fc::position.asc()).load(conn)?)
}

/// Replaces the whole chain in one transaction.
pub fn replace(conn: &mut Conn, entries: &[(String, String, bool)]) -> Result<(), StoreError> {
    super::transaction(conn, |conn| {
        diesel::delete(fc::fallback_chain).execute(conn)?;
        for (i, (platform, model, enabled)) in entries.iter().enumerate() {
            diesel::insert_into(fc::fallback_chain)
                .values((
                    fc::position.eq(i64::try_from(i).unwrap_or(i64::MAX)),
                    fc::platform.eq(platform),
                    fc::model.eq(model),
                    fc::enabled.eq(enabled),
                ))
                .execute(conn)?;
        }
        settings::bump_revision(conn)?;
        Ok(())
    })
}

/// Adds entries missing from the chain at its end, in order; existing ones keep their place.
pub fn append(conn: &mut Conn, entries: &[(String, String)]) -> Result<(), StoreError> {
    super::transaction(conn, |conn| {
        let mut next: i64 = fc::fallback_chain
            .select(diesel::dsl::max(fc::position))
            .get_result::<Option<i64>>(conn)?
            .map_or(0, |m| m + 1);
        for (platform, model) in entries {
            let inserted = diesel::insert_or_ignore_into(fc::fallback_chain)
                .values((
                    fc::position.eq(next),
                    fc::platform.eq(platform),
                    fc::model.eq(model),
                    fc::enabled.eq(true),
                ))
                .execute(conn)?;
            next += i64::try_from(inserted).unwrap_or(0);
        }
        settings::bump_revision(conn)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    fn pairs(rows: &[ChainRow]) -> Vec<(String, String, bool)> {
        rows.iter()
            .map(|r| (r.platform.clone(), r.model.clone(), r.enabled))
            .collect()
    }

    #[test]
    fn append_skips_existing_and_replace_reorders() {
        let db = TempDb::new();
        let mut c = db.conn();
        append(
            &mut c,
            &[("groq".into(), "a".into()), ("groq".into(), "b".into())],
        )
        .unwrap();
        append(
            &mut c,
            &[("groq".into(), "a".into()), ("custom".into(), "m".into())],
        )
        .unwrap();
        let rows = list(&mut c).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.model.as_str()).collect::<Vec<_>>(),
            ["a", "b", "m"]
        );
        let reordered = vec![
            ("custom".to_owned(), "m".to_owned(), false),
            ("groq".to_owned(), "a".to_owned(), true),
        ];
        replace(&mut c, &reordered).unwrap();
        assert_eq!(pairs(&list(&mut c).unwrap()), reordered);
    }
}
