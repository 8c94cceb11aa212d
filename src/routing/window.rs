//! A log of usage that stops counting at known instants: the sliding minute, a rolling day, or a calendar day
//! that ends at midnight. Each entry carries the instant it expires, so one type serves every window, restores
//! exactly from what was saved, and can hold usage a provider reported that the gateway did not see.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Requests and tokens that stop counting at `expires_ms`; saved as a compact `[expires_ms, requests, tokens]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(i64, u64, u64)", into = "(i64, u64, u64)")]
pub struct Entry {
    /// Unix ms at which this usage leaves the window.
    pub expires_ms: i64,
    /// Requests.
    pub requests: u64,
    /// Tokens.
    pub tokens: u64,
}

impl From<(i64, u64, u64)> for Entry {
    fn from((expires_ms, requests, tokens): (i64, u64, u64)) -> Entry {
        Entry {
            expires_ms,
            requests,
            tokens,
        }
    }
}

impl From<Entry> for (i64, u64, u64) {
    fn from(e: Entry) -> (i64, u64, u64) {
        (e.expires_ms, e.requests, e.tokens)
    }
}

/// Usage still counting, ordered by expiry, with running totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageLog {
    entries: VecDeque<Entry>,
    requests: u64,
    tokens: u64,
    /// Entries expiring within this many ms of the newest entry's first expiry are merged into it (at the later
    /// expiry, which only ever counts usage longer): bounds the log to about one entry per `merge_ms` of window,
    /// and no use ever counts more than `merge_ms` too long.
    merge_ms: i64,
    /// The expiry the newest entry was opened with.
    anchor_ms: i64,
}

impl UsageLog {
    /// An empty log merging entries that expire within `merge_ms` of each other.
    pub fn new(merge_ms: i64) -> UsageLog {
        UsageLog {
            merge_ms,
            ..UsageLog::default()
        }
    }

    /// Adds usage that counts until `expires_ms`.
    pub fn add(&mut self, expires_ms: i64, requests: u64, tokens: u64) {
        if requests == 0 && tokens == 0 {
            return;
        }
        self.requests += requests;
        self.tokens += tokens;
        if let Some(last) = self.entries.back_mut() {
            if expires_ms.abs_diff(self.anchor_ms) <= self.merge_ms.unsigned_abs() {
                last.expires_ms = last.expires_ms.max(expires_ms);
                last.requests += requests;
                last.tokens += tokens;
                return;
            }
        }
        let at = self.entries.partition_point(|e| e.expires_ms <= expires_ms);
        if at == self.entries.len() {
            self.anchor_ms = expires_ms;
        }
        self.entries.insert(
            at,
            Entry {
                expires_ms,
                requests,
                tokens,
            },
        );
    }

    /// Drops what has expired by `now_ms`; returns the requests and tokens still counting.
    pub fn used(&mut self, now_ms: i64) -> (u64, u64) {
        while let Some(first) = self.entries.front() {
            if first.expires_ms > now_ms {
                break;
            }
            self.requests -= first.requests;
            self.tokens -= first.tokens;
            self.entries.pop_front();
        }
        (self.requests, self.tokens)
    }

    /// Milliseconds from `now_ms` until at most `requests` requests and `tokens` tokens still count (0 if already
    /// so). Call [`UsageLog::used`] first.
    pub fn ms_until_at_most(&self, now_ms: i64, requests: u64, tokens: u64) -> i64 {
        let (mut r, mut t) = (self.requests, self.tokens);
        for entry in &self.entries {
            if r <= requests && t <= tokens {
                break;
            }
            r -= entry.requests;
            t -= entry.tokens;
            if r <= requests && t <= tokens {
                return (entry.expires_ms - now_ms).max(0);
            }
        }
        0
    }

    /// The entries still counting, oldest first, for saving.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_stops_counting_when_it_expires() {
        let mut log = UsageLog::new(0);
        log.add(60_000, 1, 100);
        log.add(90_000, 2, 50);
        assert_eq!(log.used(59_999), (3, 150));
        assert_eq!(log.used(60_000), (2, 50));
        assert_eq!(log.used(90_000), (0, 0));
    }

    #[test]
    fn late_stamps_are_inserted_in_expiry_order() {
        let mut log = UsageLog::new(0);
        log.add(90_000, 1, 1);
        log.add(60_000, 1, 1);
        log.add(75_000, 1, 1);
        let order: Vec<i64> = log.entries().map(|e| e.expires_ms).collect();
        assert_eq!(order, [60_000, 75_000, 90_000]);
        assert_eq!(log.used(70_000), (2, 2));
    }

    #[test]
    fn close_entries_merge_at_the_later_expiry() {
        let mut log = UsageLog::new(200);
        log.add(60_000, 1, 10);
        log.add(60_150, 1, 10);
        log.add(59_990, 1, 10);
        assert_eq!(log.entries().count(), 1);
        assert_eq!(
            log.used(60_149),
            (3, 30),
            "merged usage counts until the latest"
        );
        assert_eq!(log.used(60_150), (0, 0));
    }

    #[test]
    fn steady_traffic_never_keeps_an_entry_alive() {
        let mut log = UsageLog::new(200);
        for i in 0..100 {
            log.add(60_000 + i * 100, 1, 1);
        }
        assert!(
            log.entries().all(|e| e.requests <= 3),
            "each entry spans at most 200 ms"
        );
        assert_eq!(
            log.used(60_300).0,
            97,
            "the first ones expire on time, give or take 200 ms"
        );
    }

    #[test]
    fn wait_until_room() {
        let mut log = UsageLog::new(0);
        log.add(61_000, 2, 200);
        log.add(75_000, 1, 100);
        log.used(20_000);
        assert_eq!(log.ms_until_at_most(20_000, 3, 300), 0);
        assert_eq!(log.ms_until_at_most(20_000, 2, 300), 41_000);
        assert_eq!(log.ms_until_at_most(20_000, 3, 0), 55_000);
    }

    #[test]
    fn nothing_is_added_for_nothing() {
        let mut log = UsageLog::new(0);
        log.add(1, 0, 0);
        assert_eq!(log.entries().count(), 0);
    }
}
