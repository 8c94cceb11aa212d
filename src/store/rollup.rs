//! The `request_rollup` table: hourly aggregates of the request log per (platform, model), kept in step with
//! every batch written, so analytics over a month read hundreds of rows instead of millions.

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::request_rollup::dsl as rr;
use super::{Conn, StoreError};

/// One hour in milliseconds: the rollup's resolution.
pub const HOUR_MS: i64 = 3_600_000;
/// Upper bounds (ms) of the latency buckets; one more bucket holds everything above the last.
pub const LATENCY_BOUNDS_MS: [u32; 15] = [
    50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 20000, 60000,
];

/// Request counts per latency bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Histogram([u64; 16]);

impl Histogram {
    /// Counts one request.
    pub fn add(&mut self, latency_ms: u32) {
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|&b| latency_ms < b)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        self.0[bucket] += 1;
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// The `p`-quantile (0..=1), interpolated linearly inside its bucket; 0 when empty.
    pub fn quantile(&self, p: f64) -> u32 {
        let total: u64 = self.0.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = p.clamp(0.0, 1.0) * total as f64;
        let mut before = 0u64;
        for (i, &count) in self.0.iter().enumerate() {
            if count > 0 && (before + count) as f64 >= rank {
                let low = if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] };
                let high = LATENCY_BOUNDS_MS
                    .get(i)
                    .copied()
                    .unwrap_or(low.saturating_mul(2));
                let fraction = ((rank - before as f64) / count as f64).clamp(0.0, 1.0);
                return low + ((high - low) as f64 * fraction).round() as u32;
            }
            before += count;
        }
        LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1]
    }

    fn encode(&self) -> String {
        self.0
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn decode(text: &str) -> Histogram {
        let mut h = Histogram::default();
        for (slot, part) in h.0.iter_mut().zip(text.split(',')) {
            *slot = part.trim().parse().unwrap_or(0);
        }
        h
    }
}

/// One hour of one (platform, model); platform and model are empty for requests nothing served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    /// Start of the hour (Unix ms).
    pub hour: i64,
    /// Serving platform, or "".
    pub platform: String,
    /// Serving model, or "".
    pub model: String,
    /// Requests.
    pub requests: i64,
    /// Requests answered with 200.
    pub successes: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Sum of latencies (for means).
    pub latency_sum: i64,
    /// Latency distribution.
    pub latency: Histogram,
}

type RollupRow = (i64, String, String, i64, i64, i64, i64, i64, String);

impl From<RollupRow> for Rollup {
    fn from(r: RollupRow) -> Self {
        Rollup {
            hour: r.0,
            platform: r.1,
            model: r.2,
            requests: r.3,
            successes: r.4,
            prompt_tokens: r.5,
            completion_tokens: r.6,
            latency_sum: r.7,
            latency: Histogram::decode(&r.8),
        }
    }
}

/// What the hourly aggregates take from one request-log row.
pub struct Sample<'a> {
    /// Arrival (Unix ms).
    pub ts: i64,
    /// Serving platform, if any.
    pub platform: Option<&'a str>,
    /// Serving model, if any.
    pub model: Option<&'a str>,
    /// Client-visible status.
    pub status: i32,
    /// Prompt tokens.
    pub prompt_tokens: i32,
    /// Completion tokens.
    pub completion_tokens: i32,
    /// Time until the answer ended.
    pub latency_ms: i32,
}

/// Folds a batch of request-log rows into the hourly aggregates (call inside the batch's transaction).
pub fn add_batch<'a>(
    conn: &mut Conn,
    rows: impl IntoIterator<Item = Sample<'a>>,
) -> Result<(), StoreError> {
    let mut groups: HashMap<(i64, String, String), Rollup> = HashMap::new();
    for row in rows {
        let hour = row.ts.div_euclid(HOUR_MS) * HOUR_MS;
        let platform = row.platform.unwrap_or_default().to_owned();
        let model = row.model.unwrap_or_default().to_owned();
        let group = groups
            .entry((hour, platform.clone(), model.clone()))
            .or_insert_with(|| Rollup {
                hour,
                platform,
                model,
                requests: 0,
                successes: 0,
                prompt_tokens: 0,
                completion_tokens: 0,
                latency_sum: 0,
                latency: Histogram::default(),
            });
        group.requests += 1;
        group.successes += i64::from(row.status == 200);
        group.prompt_tokens += i64::from(row.prompt_tokens);
        group.completion_tokens += i64::from(row.completion_tokens);
        group.latency_sum += i64::from(row.latency_ms);
        group
            .latency
            .add(u32::try_from(row.latency_ms).unwrap_or(0));
    }
    for (_, mut group) in groups {
        let existing: Option<RollupRow> = rr::request_rollup
            .find((group.hour, &group.platform, &group.model))
            .get_result(conn)
            .optional()?;
        if let Some(old) = existing.map(Rollup::from) {
            group.requests += old.requests;
            group.successes += old.successes;
            group.prompt_tokens += old.prompt_tokens;
            group.completion_tokens += old.completion_tokens;
            group.latency_sum += old.latency_sum;
            group.latency.merge(&old.latency);
        }
        diesel::replace_into(rr::request_rollup)
            .values((
                rr::hour.eq(group.hour),
                rr::platform.eq(&group.platform),
                rr::model.eq(&group.model),
                rr::requests.eq(group.requests),
                rr::successes.eq(group.successes),
                rr::prompt_tokens.eq(group.prompt_tokens),
                rr::completion_tokens.eq(group.completion_tokens),
                rr::latency_sum.eq(group.latency_sum),
                rr::latency_histogram.eq(group.latency.encode()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Every aggregate from `since_ms` (rounded down to its hour) on.
pub fn since(conn: &mut Conn, since_ms: i64) -> Result<Vec<Rollup>, StoreError> {
    let from = since_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let rows: Vec<RollupRow> = rr::request_rollup
        .filter(rr::hour.ge(from))
        .order(rr::hour.asc())
        .load(conn)?;
    Ok(rows.into_iter().map(Rollup::from).collect())
}

/// Deletes aggregates of hours that ended before `ts_ms`.
pub fn prune_before(conn: &mut Conn, ts_ms: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(rr::request_rollup.filter(rr::hour.lt(ts_ms - HOUR_MS))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let mut h = Histogram::default();
        for i in 1..=20 {
            h.add(i * 10);
        }
        assert_eq!(h.quantile(0.5), 110);
        assert_eq!(h.quantile(0.95), 200);
        assert_eq!(Histogram::default().quantile(0.5), 0);
        let mut slow = Histogram::default();
        slow.add(90_000);
        assert_eq!(slow.quantile(0.5), 90_000);
        assert_eq!(Histogram::decode(&h.encode()), h);
    }
}
