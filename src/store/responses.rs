//! The `stored_responses` table: responses of `POST /v1/responses` kept for `GET /v1/responses/{id}` and for
//! `previous_response_id`. A row is one turn (its own input items and its response object, both JSON text); a
//! conversation is the chain of `previous_id` links, read back in one recursive query. Queries only: when rows
//! are written (off the request path) is `response_store`'s business.

use diesel::prelude::*;
use diesel::sql_types::Text;

use super::schema::stored_responses::dsl as sr;
use super::{Conn, StoreError};

/// Most links one conversation is followed back (a guard; real chains are far shorter).
const MAX_CHAIN: i64 = 100_000;

/// One kept response.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = super::schema::stored_responses)]
pub struct StoredResponse {
    /// `resp_…`.
    pub id: String,
    /// When it was made (Unix ms), for retention.
    pub created_ms: i64,
    /// The response it continued, if any.
    pub previous_id: Option<String>,
    /// Its own input items, a JSON array.
    pub input: String,
    /// The response object, as `GET` answers it.
    pub response: String,
}

impl StoredResponse {
    /// About how many bytes it holds, for bounding what is kept in memory.
    pub fn size(&self) -> usize {
        self.id.len()
            + self.previous_id.as_ref().map_or(0, String::len)
            + self.input.len()
            + self.response.len()
    }
}

/// Writes `rows` in one transaction; a row written before (a retried batch) is replaced.
pub fn insert_batch(conn: &mut Conn, rows: &[StoredResponse]) -> Result<(), StoreError> {
    super::transaction(conn, |conn| {
        for row in rows {
            diesel::replace_into(sr::stored_responses)
                .values(row)
                .execute(conn)?;
        }
        Ok(())
    })
}

/// The response `id`, if it is kept.
pub fn get(conn: &mut Conn, id: &str) -> Result<Option<StoredResponse>, StoreError> {
    Ok(sr::stored_responses
        .find(id)
        .select(StoredResponse::as_select())
        .get_result(conn)
        .optional()?)
}

/// The response `id` and the responses it continues, newest first, as far back as they are kept.
pub fn chain(conn: &mut Conn, id: &str) -> Result<Vec<StoredResponse>, StoreError> {
    Ok(diesel::sql_query(
        "WITH RECURSIVE link(id, previous_id, depth) AS ( \
             SELECT id, previous_id, 0 FROM stored_responses WHERE id = ? \
             UNION ALL \
             SELECT s.id, s.previous_id, link.depth + 1 FROM stored_responses s \
             JOIN link ON s.id = link.previous_id WHERE link.depth < ? \
         ) \
         SELECT s.id, s.created_ms, s.previous_id, s.input, s.response \
         FROM stored_responses s JOIN link ON s.id = link.id ORDER BY link.depth",
    )
    .bind::<Text, _>(id)
    .bind::<diesel::sql_types::BigInt, _>(MAX_CHAIN)
    .load(conn)?)
}

/// Removes the response `id`; whether there was one.
pub fn delete(conn: &mut Conn, id: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(sr::stored_responses.find(id)).execute(conn)? > 0)
}

/// Removes responses made before `ms` (Unix ms); how many.
pub fn prune_before(conn: &mut Conn, ms: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(sr::stored_responses.filter(sr::created_ms.lt(ms))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    fn row(id: &str, previous: Option<&str>, created_ms: i64) -> StoredResponse {
        StoredResponse {
            id: id.into(),
            created_ms,
            previous_id: previous.map(str::to_owned),
            input: "[]".into(),
            response: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    #[test]
    fn rows_chain_back_through_their_previous_ids() {
        let db = TempDb::new();
        let mut c = db.conn();
        let rows = [
            row("a", None, 1),
            row("b", Some("a"), 2),
            row("c", Some("b"), 3),
            row("x", None, 4),
        ];
        insert_batch(&mut c, &rows).unwrap();
        insert_batch(&mut c, &rows[..1]).unwrap();
        let ids = |rows: Vec<StoredResponse>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(chain(&mut c, "c").unwrap()), ["c", "b", "a"]);
        assert_eq!(ids(chain(&mut c, "x").unwrap()), ["x"]);
        assert!(chain(&mut c, "nope").unwrap().is_empty());
        assert_eq!(get(&mut c, "b").unwrap(), Some(rows[1].clone()));
        assert!(delete(&mut c, "b").unwrap());
        assert!(!delete(&mut c, "b").unwrap());
        assert_eq!(
            ids(chain(&mut c, "c").unwrap()),
            ["c"],
            "a deleted link ends the chain"
        );
        assert_eq!(prune_before(&mut c, 3).unwrap(), 1);
        assert_eq!(get(&mut c, "a").unwrap(), None);
        assert!(get(&mut c, "c").unwrap().is_some());
    }
}
