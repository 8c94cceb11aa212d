//! The `aliases` table: names a client may use as `model`, each trying its targets in order. Stored as the admin
//! API gives them (validation is the caller's); the whole list is replaced at once, like the chain.

use diesel::prelude::*;

use super::schema::aliases::dsl as al;
use super::{settings, Conn, StoreError};

/// One alias: its name and its targets (`platform/model` or model ids), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRow {
    /// The name used as `model`.
    pub name: String,
    /// What it tries, first to last.
    pub targets: Vec<String>,
}

/// Every alias, in the order it was given.
pub fn list(conn: &mut Conn) -> Result<Vec<AliasRow>, StoreError> {
    let rows: Vec<(String, String)> = al::aliases
        .order(al::position.asc())
        .select((al::name, al::targets))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(name, targets)| AliasRow {
            targets: serde_json::from_str(&targets).unwrap_or_else(|e| {
                log::warn!("alias '{name}' has unreadable targets ({e}); it tries none");
                Vec::new()
            }),
            name,
        })
        .collect())
}

/// Replaces every alias in one transaction and bumps the configuration revision so routing picks them up.
pub fn replace(conn: &mut Conn, aliases: &[AliasRow]) -> Result<(), StoreError> {
    super::transaction(conn, |conn| {
        diesel::delete(al::aliases).execute(conn)?;
        for (i, alias) in aliases.iter().enumerate() {
            let targets = serde_json::Value::from(alias.targets.clone()).to_string();
            diesel::insert_into(al::aliases)
                .values((
                    al::name.eq(&alias.name),
                    al::position.eq(i64::try_from(i).unwrap_or(i64::MAX)),
                    al::targets.eq(targets),
                ))
                .execute(conn)?;
        }
        settings::bump_revision(conn)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    #[test]
    fn aliases_are_replaced_whole_and_keep_their_order() {
        let db = TempDb::new();
        let mut c = db.conn();
        let before = settings::revision(&mut c).unwrap();
        let given = vec![
            AliasRow {
                name: "fast".into(),
                targets: vec!["groq/llama-3.3-70b-versatile".into(), "gpt-oss-120b".into()],
            },
            AliasRow {
                name: "claude-sonnet-4-5".into(),
                targets: vec!["gemini-2.5-flash".into()],
            },
        ];
        replace(&mut c, &given).unwrap();
        assert_eq!(list(&mut c).unwrap(), given);
        assert!(settings::revision(&mut c).unwrap() > before);
        replace(&mut c, &given[1..]).unwrap();
        assert_eq!(list(&mut c).unwrap(), given[1..]);
    }
}
