//! The `request_log` table: one row per client request, written in batches, and the aggregates the analytics
//! API reads (computed in SQL over the indexed `ts` column).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use serde::Serialize;

use super::schema::request_log::dsl as rl;
use super::{Conn, StoreError};
use crate::timefmt::iso8601_ms;

/// A row to insert.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = super::schema::request_log)]
pub struct NewRequestLog {
    /// When the request arrived (Unix ms).
    pub ts: i64,
    /// The model the client asked for.
    pub requested_model: String,
    /// Who served it, if anyone.
    pub platform: Option<String>,
    /// Which model served it, if any.
    pub model: Option<String>,
    /// HTTP status the client got (499: the client went away).
    pub status: i32,
    /// Time until the answer ended.
    pub latency_ms: i32,
    /// Prompt tokens (reported or estimated).
    pub prompt_tokens: i32,
    /// Completion tokens (reported or estimated).
    pub completion_tokens: i32,
    /// Upstream attempts made.
    pub attempts: i32,
    /// Whether the client streamed.
    pub stream: bool,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// JSON array of per-attempt outcomes.
    pub attempt_log: Option<String>,
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct RequestLogRow {
    /// Row id.
    pub id: i64,
    /// Arrival (Unix ms).
    pub ts: i64,
    /// Requested model.
    pub requested_model: String,
    /// Serving platform.
    pub platform: Option<String>,
    /// Serving model.
    pub model: Option<String>,
    /// Client-visible status.
    pub status: i32,
    /// Latency.
    pub latency_ms: i32,
    /// Prompt tokens.
    pub prompt_tokens: i32,
    /// Completion tokens.
    pub completion_tokens: i32,
    /// Attempts.
    pub attempts: i32,
    /// Streamed.
    pub stream: bool,
    /// Error text.
    pub error: Option<String>,
    /// Per-attempt JSON.
    pub attempt_log: Option<String>,
}

/// Inserts rows in one transaction.
pub fn insert_batch(conn: &mut Conn, rows: &[NewRequestLog]) -> Result<(), StoreError> {
    conn.transaction(|conn| {
        for chunk in rows.chunks(200) {
            diesel::insert_into(rl::request_log)
                .values(chunk)
                .execute(conn)?;
        }
        Ok(())
    })
}

/// The newest `limit` rows, newest first.
pub fn recent(conn: &mut Conn, limit: i64) -> Result<Vec<RequestLogRow>, StoreError> {
    Ok(rl::request_log
        .order((rl::ts.desc(), rl::id.desc()))
        .limit(limit)
        .load(conn)?)
}

/// Deletes rows older than `ts_ms`; how many went.
pub fn prune_before(conn: &mut Conn, ts_ms: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(rl::request_log.filter(rl::ts.lt(ts_ms))).execute(conn)?)
}

/// `totals` of `GET /api/analytics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Requests in range.
    pub requests: i64,
    /// Requests answered with 200.
    pub successes: i64,
    /// successes / requests (0 when none).
    pub success_rate: f64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Median latency.
    pub latency_p50_ms: i64,
    /// 95th percentile latency.
    pub latency_p95_ms: i64,
}

/// One bucket of the time series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesPoint {
    /// Bucket start, ISO-8601.
    pub t: String,
    /// Requests.
    pub requests: i64,
    /// Successes.
    pub successes: i64,
    /// Prompt + completion tokens.
    pub tokens: i64,
}

/// One (platform, model) row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderRow {
    /// Platform id.
    pub platform: String,
    /// Model id.
    pub model: String,
    /// Requests served or attempted there.
    pub requests: i64,
    /// Successes.
    pub successes: i64,
    /// Mean latency.
    pub avg_latency_ms: f64,
    /// Tokens.
    pub tokens: i64,
}

/// The whole `GET /api/analytics` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analytics {
    /// Range totals.
    pub totals: Totals,
    /// Time series, oldest first.
    pub series: Vec<SeriesPoint>,
    /// Per (platform, model).
    pub by_provider: Vec<ProviderRow>,
}

#[derive(QueryableByName)]
struct TotalsRow {
    #[diesel(sql_type = BigInt)]
    requests: i64,
    #[diesel(sql_type = BigInt)]
    successes: i64,
    #[diesel(sql_type = BigInt)]
    prompt_tokens: i64,
    #[diesel(sql_type = BigInt)]
    completion_tokens: i64,
}

#[derive(QueryableByName)]
struct BucketRow {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = BigInt)]
    requests: i64,
    #[diesel(sql_type = BigInt)]
    successes: i64,
    #[diesel(sql_type = BigInt)]
    tokens: i64,
}

#[derive(QueryableByName)]
struct GroupRow {
    #[diesel(sql_type = Nullable<Text>)]
    platform: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    model: Option<String>,
    #[diesel(sql_type = BigInt)]
    requests: i64,
    #[diesel(sql_type = BigInt)]
    successes: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    avg_latency_ms: f64,
    #[diesel(sql_type = BigInt)]
    tokens: i64,
}

/// Aggregates every request since `since_ms` into totals, `bucket_ms` buckets and per-provider rows.
pub fn analytics(conn: &mut Conn, since_ms: i64, bucket_ms: i64) -> Result<Analytics, StoreError> {
    let bucket_ms = bucket_ms.max(1);
    let t: TotalsRow = diesel::sql_query(
        "SELECT COUNT(*) AS requests, COALESCE(SUM(status = 200), 0) AS successes, \
         COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, COALESCE(SUM(completion_tokens), 0) AS completion_tokens \
         FROM request_log WHERE ts >= ?",
    )
    .bind::<BigInt, _>(since_ms)
    .get_result(conn)?;
    let percentile = |conn: &mut Conn, p: f64| -> Result<i64, StoreError> {
        if t.requests == 0 {
            return Ok(0);
        }
        let offset = ((t.requests - 1) as f64 * p).round() as i64;
        Ok(rl::request_log
            .filter(rl::ts.ge(since_ms))
            .select(rl::latency_ms)
            .order(rl::latency_ms.asc())
            .limit(1)
            .offset(offset)
            .first::<i32>(conn)
            .map(i64::from)?)
    };
    let totals = Totals {
        requests: t.requests,
        successes: t.successes,
        success_rate: if t.requests == 0 {
            0.0
        } else {
            t.successes as f64 / t.requests as f64
        },
        prompt_tokens: t.prompt_tokens,
        completion_tokens: t.completion_tokens,
        latency_p50_ms: percentile(conn, 0.50)?,
        latency_p95_ms: percentile(conn, 0.95)?,
    };
    let buckets: Vec<BucketRow> = diesel::sql_query(
        "SELECT (ts / ?) * ? AS bucket, COUNT(*) AS requests, COALESCE(SUM(status = 200), 0) AS successes, \
         COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS tokens \
         FROM request_log WHERE ts >= ? GROUP BY bucket ORDER BY bucket",
    )
    .bind::<BigInt, _>(bucket_ms)
    .bind::<BigInt, _>(bucket_ms)
    .bind::<BigInt, _>(since_ms)
    .load(conn)?;
    let groups: Vec<GroupRow> = diesel::sql_query(
        "SELECT platform, model, COUNT(*) AS requests, COALESCE(SUM(status = 200), 0) AS successes, \
         CAST(AVG(latency_ms) AS REAL) AS avg_latency_ms, COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS tokens \
         FROM request_log WHERE ts >= ? AND platform IS NOT NULL GROUP BY platform, model ORDER BY requests DESC",
    )
    .bind::<BigInt, _>(since_ms)
    .load(conn)?;
    Ok(Analytics {
        totals,
        series: buckets
            .into_iter()
            .map(|b| SeriesPoint {
                t: iso8601_ms(b.bucket),
                requests: b.requests,
                successes: b.successes,
                tokens: b.tokens,
            })
            .collect(),
        by_provider: groups
            .into_iter()
            .map(|g| ProviderRow {
                platform: g.platform.unwrap_or_default(),
                model: g.model.unwrap_or_default(),
                requests: g.requests,
                successes: g.successes,
                avg_latency_ms: g.avg_latency_ms,
                tokens: g.tokens,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    fn row(ts: i64, status: i32, latency: i32) -> NewRequestLog {
        NewRequestLog {
            ts,
            requested_model: "auto".into(),
            platform: (status == 200).then(|| "groq".to_owned()),
            model: (status == 200).then(|| "llama".to_owned()),
            status,
            latency_ms: latency,
            prompt_tokens: 10,
            completion_tokens: 5,
            attempts: 1,
            stream: false,
            error: None,
            attempt_log: None,
        }
    }

    #[test]
    fn aggregates_totals_series_and_providers() {
        let db = TempDb::new();
        let mut c = db.conn();
        let rows: Vec<_> = (0..20)
            .map(|i| {
                row(
                    3_600_000 + i * 60_000,
                    if i % 4 == 0 { 502 } else { 200 },
                    (i as i32 + 1) * 10,
                )
            })
            .collect();
        insert_batch(&mut c, &rows).unwrap();
        insert_batch(&mut c, &[row(1, 200, 5)]).unwrap();
        let a = analytics(&mut c, 3_600_000, 600_000).unwrap();
        assert_eq!(a.totals.requests, 20);
        assert_eq!(a.totals.successes, 15);
        assert!((a.totals.success_rate - 0.75).abs() < 1e-9);
        assert_eq!(a.totals.prompt_tokens, 200);
        assert_eq!(a.totals.latency_p50_ms, 110);
        assert_eq!(a.totals.latency_p95_ms, 190);
        assert_eq!(a.series.len(), 2);
        assert_eq!(a.series[0].t, "1970-01-01T01:00:00.000Z");
        assert_eq!(a.series[0].requests, 10);
        assert_eq!(a.by_provider.len(), 1);
        assert_eq!(a.by_provider[0].requests, 15);
    }

    #[test]
    fn recent_and_prune() {
        let db = TempDb::new();
        let mut c = db.conn();
        insert_batch(&mut c, &[row(1, 200, 1), row(2, 200, 2), row(3, 502, 3)]).unwrap();
        let r = recent(&mut c, 2).unwrap();
        assert_eq!(r.iter().map(|r| r.ts).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(prune_before(&mut c, 3).unwrap(), 2);
        assert_eq!(recent(&mut c, 10).unwrap().len(), 1);
        let empty = analytics(&mut c, 100, 1000).unwrap();
        assert_eq!(empty.totals.requests, 0);
    }
}
