//! The `request_log` table: one row per client request, written in batches, and the aggregates the analytics
//! API reads (computed in SQL over the indexed `ts` column).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sqlite::Sqlite;
use serde::Serialize;

use super::schema::request_log::dsl as rl;
use super::{rollup, Conn, StoreError};
use crate::timefmt::iso8601_ms;

/// One row of the log, as written and as read back.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable)]
#[diesel(table_name = super::schema::request_log)]
pub struct LogEntry {
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
    /// The client key's name, when a client key made the request.
    pub client: Option<String>,
    /// Whether the response cache answered it.
    pub cached: bool,
}

/// Inserts rows in one transaction, many rows per statement.
///
/// diesel's SQLite batch insert runs one statement per row inside a savepoint. Here a batch is written as
/// statements of 64 rows and the rest in statements of 16, 4 and 1 rows: four statement shapes, each prepared
/// once per connection and found again by its type, so no batch parses SQL (parsing a new 64-row statement
/// took a third of each row's cost). Without the savepoint a write SQLite aborts itself (a full disk) reports
/// its cause instead of a failed savepoint release.
pub fn insert_batch(conn: &mut Conn, rows: &[LogEntry]) -> Result<(), StoreError> {
    super::transaction(conn, |conn| {
        let mut rest = rows;
        insert_by::<64>(conn, &mut rest)?;
        insert_by::<16>(conn, &mut rest)?;
        insert_by::<4>(conn, &mut rest)?;
        insert_by::<1>(conn, &mut rest)?;
        rollup::add_batch(conn, rows.iter().map(LogEntry::sample))
    })
}

/// Inserts the front of `rest` in statements of `N` rows while `N` rows are left.
fn insert_by<const N: usize>(conn: &mut Conn, rest: &mut &[LogEntry]) -> Result<(), StoreError> {
    while let Some((rows, after)) = rest.split_first_chunk::<N>() {
        LogRows(rows).execute(conn)?;
        *rest = after;
    }
    Ok(())
}

/// One INSERT of `N` log rows, binding each value where it lies.
struct LogRows<'a, const N: usize>(&'a [LogEntry; N]);

/// The statement cache's key for [`LogRows`] of `N` rows.
struct LogRowsOf<const N: usize>;

impl<const N: usize> QueryId for LogRows<'_, N> {
    type QueryId = LogRowsOf<N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

/// The INSERT's column list and each row's bound values, written from one list of `column: SQL type`, so the
/// two can never disagree on order.
macro_rules! log_row_columns {
    ($($column:ident: $sql_type:ty),+ $(,)?) => {
        /// `INSERT INTO request_log (columns) VALUES ` for [`LogRows`].
        const INSERT_LOG_ROWS: &str = concat!(
            "INSERT INTO request_log (",
            log_row_columns!(@names $($column),+),
            ") VALUES "
        );

        /// Binds `row`'s values as one parenthesised tuple of the INSERT.
        fn bind_log_row<'b>(out: &mut AstPass<'_, 'b, Sqlite>, row: &'b LogEntry) -> QueryResult<()> {
            use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
            let mut separator = "(";
            $(
                out.push_sql(separator);
                out.push_bind_param::<$sql_type, _>(&row.$column)?;
                separator = ",";
            )+
            out.push_sql(")");
            Ok(())
        }
    };
    (@names $first:ident $(, $column:ident)*) => {
        concat!(stringify!($first) $(, ", ", stringify!($column))*)
    };
}

log_row_columns! {
    ts: BigInt,
    requested_model: Text,
    platform: Nullable<Text>,
    model: Nullable<Text>,
    status: Integer,
    latency_ms: Integer,
    prompt_tokens: Integer,
    completion_tokens: Integer,
    attempts: Integer,
    stream: Bool,
    error: Nullable<Text>,
    attempt_log: Nullable<Text>,
    client: Nullable<Text>,
    cached: Bool,
}

impl<const N: usize> QueryFragment<Sqlite> for LogRows<'_, N> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(INSERT_LOG_ROWS);
        for (i, row) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_sql(",");
            }
            bind_log_row(&mut out, row)?;
        }
        Ok(())
    }
}

impl<const N: usize> RunQueryDsl<Conn> for LogRows<'_, N> {}

impl LogEntry {
    /// What the hourly aggregates take from this row.
    fn sample(&self) -> rollup::Sample<'_> {
        rollup::Sample {
            ts: self.ts,
            platform: self.platform.as_deref(),
            model: self.model.as_deref(),
            status: self.status,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            latency_ms: self.latency_ms,
        }
    }
}

/// The newest `limit` rows, newest first.
pub fn recent(conn: &mut Conn, limit: i64) -> Result<Vec<LogEntry>, StoreError> {
    Ok(rl::request_log
        .select((
            rl::ts,
            rl::requested_model,
            rl::platform,
            rl::model,
            rl::status,
            rl::latency_ms,
            rl::prompt_tokens,
            rl::completion_tokens,
            rl::attempts,
            rl::stream,
            rl::error,
            rl::attempt_log,
            rl::client,
            rl::cached,
        ))
        .order((rl::ts.desc(), rl::id.desc()))
        .limit(limit)
        .load(conn)?)
}

/// Deletes rows older than `ts_ms` (and hourly aggregates of hours that ended before it); how many rows went.
pub fn prune_before(conn: &mut Conn, ts_ms: i64) -> Result<usize, StoreError> {
    rollup::prune_before(conn, ts_ms)?;
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
    /// Per client key, by name (requests made with the unified key are not in it).
    pub by_client: Vec<ClientUse>,
}

/// One client key's requests in range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientUse {
    /// The client's name.
    pub client: String,
    /// Requests.
    pub requests: i64,
    /// Successes.
    pub successes: i64,
    /// Prompt + completion tokens.
    pub tokens: i64,
}

/// Requests per client since `since_ms`, from the log itself (the hourly rollup knows no clients), most first.
fn by_client(conn: &mut Conn, since_ms: i64) -> Result<Vec<ClientUse>, StoreError> {
    use diesel::dsl::{count_star, sum};
    type Sums = (Option<String>, i64, Option<i64>, Option<i64>);
    let rows: Vec<Sums> = rl::request_log
        .filter(rl::ts.ge(since_ms).and(rl::client.is_not_null()))
        .group_by(rl::client)
        .select((
            rl::client,
            count_star(),
            sum(rl::prompt_tokens),
            sum(rl::completion_tokens),
        ))
        .load(conn)?;
    let ok: Vec<(Option<String>, i64)> = rl::request_log
        .filter(rl::ts.ge(since_ms).and(rl::client.is_not_null()))
        .filter(rl::status.eq(200))
        .group_by(rl::client)
        .select((rl::client, count_star()))
        .load(conn)?;
    let mut out: Vec<ClientUse> = rows
        .into_iter()
        .filter_map(|(client, requests, prompt, completion)| {
            let client = client?;
            let successes = ok
                .iter()
                .find(|(c, _)| c.as_deref() == Some(client.as_str()))
                .map_or(0, |(_, n)| *n);
            Some(ClientUse {
                client,
                requests,
                successes,
                tokens: prompt.unwrap_or(0) + completion.unwrap_or(0),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.client.cmp(&b.client))
    });
    Ok(out)
}

/// Aggregates every request since `since_ms` into totals, `bucket_ms` buckets (whole hours) and per-provider
/// rows, from the hourly rollup; latency percentiles are interpolated from its histogram.
pub fn analytics(conn: &mut Conn, since_ms: i64, bucket_ms: i64) -> Result<Analytics, StoreError> {
    let bucket_ms = (bucket_ms.max(rollup::HOUR_MS) / rollup::HOUR_MS) * rollup::HOUR_MS;
    let hours = rollup::since(conn, since_ms)?;
    let mut latency = rollup::Histogram::default();
    let mut totals = Totals {
        requests: 0,
        successes: 0,
        success_rate: 0.0,
        prompt_tokens: 0,
        completion_tokens: 0,
        latency_p50_ms: 0,
        latency_p95_ms: 0,
    };
    let mut series: Vec<SeriesPoint> = Vec::new();
    let mut providers: HashMap<(String, String), (ProviderRow, i64)> = HashMap::new();
    for h in &hours {
        totals.requests += h.requests;
        totals.successes += h.successes;
        totals.prompt_tokens += h.prompt_tokens;
        totals.completion_tokens += h.completion_tokens;
        latency.merge(&h.latency);
        let tokens = h.prompt_tokens + h.completion_tokens;
        let t = iso8601_ms(h.hour.div_euclid(bucket_ms) * bucket_ms);
        match series.last_mut() {
            Some(point) if point.t == t => {
                point.requests += h.requests;
                point.successes += h.successes;
                point.tokens += tokens;
            }
            _ => series.push(SeriesPoint {
                t,
                requests: h.requests,
                successes: h.successes,
                tokens,
            }),
        }
        if !h.platform.is_empty() {
            let entry = providers
                .entry((h.platform.clone(), h.model.clone()))
                .or_insert_with(|| {
                    let row = ProviderRow {
                        platform: h.platform.clone(),
                        model: h.model.clone(),
                        requests: 0,
                        successes: 0,
                        avg_latency_ms: 0.0,
                        tokens: 0,
                    };
                    (row, 0)
                });
            entry.0.requests += h.requests;
            entry.0.successes += h.successes;
            entry.0.tokens += tokens;
            entry.1 += h.latency_sum;
        }
    }
    if totals.requests > 0 {
        totals.success_rate = totals.successes as f64 / totals.requests as f64;
    }
    totals.latency_p50_ms = i64::from(latency.quantile(0.50));
    totals.latency_p95_ms = i64::from(latency.quantile(0.95));
    let mut by_provider: Vec<ProviderRow> = providers
        .into_values()
        .map(|(mut row, latency_sum)| {
            row.avg_latency_ms = if row.requests > 0 {
                latency_sum as f64 / row.requests as f64
            } else {
                0.0
            };
            row
        })
        .collect();
    by_provider.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.platform.cmp(&b.platform))
    });
    Ok(Analytics {
        totals,
        series,
        by_provider,
        by_client: by_client(conn, since_ms)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    fn row(ts: i64, status: i32, latency: i32) -> LogEntry {
        LogEntry {
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
            client: None,
            cached: false,
        }
    }

    #[test]
    fn aggregates_totals_series_and_providers() {
        let db = TempDb::new();
        let mut c = db.conn();
        let rows: Vec<_> = (0..20)
            .map(|i| {
                row(
                    3_600_000 + i * 360_000,
                    if i % 4 == 0 { 502 } else { 200 },
                    (i as i32 + 1) * 10,
                )
            })
            .collect();
        insert_batch(&mut c, &rows).unwrap();
        insert_batch(&mut c, &[row(1, 200, 5)]).unwrap();
        let a = analytics(&mut c, 3_600_000, 3_600_000).unwrap();
        assert_eq!(a.totals.requests, 20);
        assert_eq!(a.totals.successes, 15);
        assert!((a.totals.success_rate - 0.75).abs() < 1e-9);
        assert_eq!(a.totals.prompt_tokens, 200);
        assert_eq!(a.totals.latency_p50_ms, 110);
        assert_eq!(
            a.totals.latency_p95_ms, 200,
            "interpolated inside the 100–200 ms bucket"
        );
        assert_eq!(a.series.len(), 2);
        assert_eq!(a.series[0].t, "1970-01-01T01:00:00.000Z");
        assert_eq!(a.series[0].requests, 10);
        assert_eq!(a.by_provider.len(), 1);
        assert_eq!(a.by_provider[0].requests, 15);
    }

    #[test]
    fn a_batch_of_every_statement_size_is_kept_whole_and_in_order() {
        // 64 + 16 + 16 + 4 + 3 rows: every statement shape, each more than once where it can be.
        let db = TempDb::new();
        let mut c = db.conn();
        let rows: Vec<_> = (0..105)
            .map(|i: i32| LogEntry {
                error: (i % 3 == 0).then(|| format!("error {i}")),
                attempt_log: (i % 2 == 0).then(|| format!("[{i}]")),
                client: (i % 5 == 0).then(|| format!("client {i}")),
                stream: i % 2 == 1,
                cached: i % 7 == 0,
                attempts: i % 4,
                prompt_tokens: i * 2,
                completion_tokens: i * 3,
                requested_model: format!("model {i}"),
                ..row(i64::from(i) + 1, if i % 4 == 0 { 502 } else { 200 }, i)
            })
            .collect();
        insert_batch(&mut c, &rows[..103]).unwrap();
        insert_batch(&mut c, &rows[103..]).unwrap();
        let mut back = recent(&mut c, 200).unwrap();
        back.reverse();
        assert_eq!(back, rows);
    }

    #[test]
    fn recent_and_prune() {
        const H: i64 = rollup::HOUR_MS;
        let db = TempDb::new();
        let mut c = db.conn();
        insert_batch(
            &mut c,
            &[row(1, 200, 1), row(2, 200, 2), row(2 * H + 5, 502, 3)],
        )
        .unwrap();
        let r = recent(&mut c, 2).unwrap();
        assert_eq!(r.iter().map(|r| r.ts).collect::<Vec<_>>(), [2 * H + 5, 2]);
        assert_eq!(prune_before(&mut c, 2 * H).unwrap(), 2);
        assert_eq!(recent(&mut c, 10).unwrap().len(), 1);
        assert_eq!(
            analytics(&mut c, 0, H).unwrap().totals.requests,
            1,
            "the pruned hour's aggregate is gone too"
        );
        assert_eq!(analytics(&mut c, 3 * H, H).unwrap().totals.requests, 0);
    }

    #[test]
    fn migration_backfill_matches_the_live_rollup() {
        use diesel::connection::SimpleConnection;
        let db = TempDb::new();
        let mut c = db.conn();
        let row = |ts: i64, platform: Option<&str>, status: i32, latency_ms: i32| LogEntry {
            ts,
            requested_model: "auto".into(),
            platform: platform.map(str::to_owned),
            model: platform.map(|_| "m".to_owned()),
            status,
            latency_ms,
            prompt_tokens: 3,
            completion_tokens: 2,
            attempts: 1,
            stream: false,
            error: None,
            attempt_log: None,
            client: None,
            cached: false,
        };
        let rows = [
            row(10, Some("groq"), 200, 40),
            row(20, Some("groq"), 200, 70_000),
            row(rollup::HOUR_MS + 5, None, 502, 150),
        ];
        insert_batch(&mut c, &rows).unwrap();
        insert_batch(&mut c, &rows[..1]).unwrap();
        let live = rollup::since(&mut c, 0).unwrap();
        assert_eq!(live.len(), 2);
        assert_eq!(live[0].requests, 3);
        let migration = include_str!("../../migrations/2026-11-25-000001_request_rollup/up.sql");
        let backfill = &migration[migration.find("INSERT INTO").unwrap()..];
        c.batch_execute("DELETE FROM request_rollup;").unwrap();
        c.batch_execute(backfill).unwrap();
        assert_eq!(rollup::since(&mut c, 0).unwrap(), live);
    }
}
