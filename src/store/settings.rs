//! The `settings` table: named values (the sealed unified key, the encryption canary, the config revision).

use diesel::prelude::*;

use super::schema::settings::dsl::{name, settings, value};
use super::{Conn, StoreError};

const REVISION: &str = "config_revision";

/// Reads one setting.
pub fn get(conn: &mut Conn, key: &str) -> Result<Option<String>, StoreError> {
    Ok(settings
        .filter(name.eq(key))
        .select(value)
        .get_result::<String>(conn)
        .optional()?)
}

/// Writes one setting.
pub fn set(conn: &mut Conn, key: &str, new_value: &str) -> Result<(), StoreError> {
    diesel::replace_into(settings)
        .values((name.eq(key), value.eq(new_value)))
        .execute(conn)?;
    Ok(())
}

/// The configuration revision, bumped on every key or chain change so running servers notice edits made
/// by other processes.
pub fn revision(conn: &mut Conn) -> Result<i64, StoreError> {
    Ok(get(conn, REVISION)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Increments the configuration revision and returns the new value.
pub fn bump_revision(conn: &mut Conn) -> Result<i64, StoreError> {
    let next = revision(conn)? + 1;
    set(conn, REVISION, &next.to_string())?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    #[test]
    fn get_set_and_revision() {
        let db = TempDb::new();
        let mut c = db.conn();
        assert_eq!(get(&mut c, "x").unwrap(), None);
        set(&mut c, "x", "1").unwrap();
        set(&mut c, "x", "2").unwrap();
        assert_eq!(get(&mut c, "x").unwrap().as_deref(), Some("2"));
        assert_eq!(bump_revision(&mut c).unwrap(), 1);
        assert_eq!(bump_revision(&mut c).unwrap(), 2);
        assert_eq!(revision(&mut c).unwrap(), 2);
    }
}
