//! A client key's own limits (requests and tokens per minute and per UTC day) as fixed windows: whether a request
//! is admitted, what it spends, and how long to wait when it is not. Pure: no clock, no IO, no actix; the caller
//! passes the time and keeps the counters.

use serde::Serialize;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// A client's limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClientLimits {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Requests per UTC day.
    pub rpd: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Tokens per UTC day.
    pub tpd: Option<u64>,
}

/// A client's use in its current windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientUsage {
    /// Start of the minute window, Unix ms.
    pub minute_start: i64,
    /// Requests in the minute window.
    pub minute_requests: u64,
    /// Tokens in the minute window.
    pub minute_tokens: u64,
    /// Start of the day window (00:00 UTC), Unix ms.
    pub day_start: i64,
    /// Requests in the day window.
    pub day_requests: u64,
    /// Tokens in the day window.
    pub day_tokens: u64,
}

/// What the dashboard and `GET /api/clients` show as used now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Used {
    /// Requests this minute.
    pub rpm: u64,
    /// Requests today.
    pub rpd: u64,
    /// Tokens this minute.
    pub tpm: u64,
    /// Tokens today.
    pub tpd: u64,
}

/// A refusal: which limit, and the seconds until its window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    /// `rpm`, `rpd`, `tpm` or `tpd`.
    pub limit: &'static str,
    /// Seconds until the window that refused resets (at least 1).
    pub retry_after_secs: u64,
}

impl ClientUsage {
    /// Starts new windows where `now_ms` has left the current ones.
    pub fn roll(&mut self, now_ms: i64) {
        let minute = now_ms - now_ms.rem_euclid(MINUTE_MS);
        if self.minute_start != minute {
            self.minute_start = minute;
            self.minute_requests = 0;
            self.minute_tokens = 0;
        }
        let day = now_ms - now_ms.rem_euclid(DAY_MS);
        if self.day_start != day {
            self.day_start = day;
            self.day_requests = 0;
            self.day_tokens = 0;
        }
    }

    /// The use counting at `now_ms`.
    pub fn used(mut self, now_ms: i64) -> Used {
        self.roll(now_ms);
        Used {
            rpm: self.minute_requests,
            rpd: self.day_requests,
            tpm: self.minute_tokens,
            tpd: self.day_tokens,
        }
    }

    /// Admits one request estimated at `tokens` and counts it, or says which limit refuses it. A request is
    /// refused when its count would pass a request limit, or when a token limit is already spent (an estimate
    /// alone never refuses a request the window still has room for).
    pub fn admit(
        &mut self,
        limits: &ClientLimits,
        tokens: u64,
        now_ms: i64,
    ) -> Result<(), OverLimit> {
        self.roll(now_ms);
        let minute_left = wait_secs(self.minute_start + MINUTE_MS, now_ms);
        let day_left = wait_secs(self.day_start + DAY_MS, now_ms);
        let checks = [
            ("rpm", limits.rpm, self.minute_requests + 1, minute_left),
            ("rpd", limits.rpd, self.day_requests + 1, day_left),
            ("tpm", limits.tpm, self.minute_tokens + 1, minute_left),
            ("tpd", limits.tpd, self.day_tokens + 1, day_left),
        ];
        for (limit, cap, would_be, wait) in checks {
            if cap.is_some_and(|cap| would_be > cap) {
                return Err(OverLimit {
                    limit,
                    retry_after_secs: wait,
                });
            }
        }
        self.minute_requests += 1;
        self.day_requests += 1;
        self.add_tokens(i64::try_from(tokens).unwrap_or(i64::MAX), now_ms);
        Ok(())
    }

    /// Adds (or, reconciling an estimate with the answer's usage, takes back) tokens in the current windows.
    pub fn add_tokens(&mut self, delta: i64, now_ms: i64) {
        self.roll(now_ms);
        let apply = |n: u64| n.saturating_add_signed(delta);
        self.minute_tokens = apply(self.minute_tokens);
        self.day_tokens = apply(self.day_tokens);
    }
}

fn wait_secs(end_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((end_ms - now_ms + 999) / 1000)
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS;

    #[test]
    fn request_limits_refuse_past_the_cap_until_the_window_ends() {
        let limits = ClientLimits {
            rpm: Some(2),
            ..ClientLimits::default()
        };
        let mut u = ClientUsage::default();
        assert!(u.admit(&limits, 5, T0 + 1_000).is_ok());
        assert!(u.admit(&limits, 5, T0 + 2_000).is_ok());
        let refused = u.admit(&limits, 5, T0 + 20_000).unwrap_err();
        assert_eq!(refused.limit, "rpm");
        assert_eq!(refused.retry_after_secs, 40);
        assert!(u.admit(&limits, 5, T0 + MINUTE_MS).is_ok(), "new minute");
        assert_eq!(u.used(T0 + MINUTE_MS).rpd, 3);
    }

    #[test]
    fn token_limits_refuse_once_spent_and_reconcile() {
        let limits = ClientLimits {
            tpd: Some(100),
            ..ClientLimits::default()
        };
        let mut u = ClientUsage::default();
        assert!(u.admit(&limits, 500, T0).is_ok(), "room left admits");
        let refused = u.admit(&limits, 1, T0 + 1).unwrap_err();
        assert_eq!(refused.limit, "tpd");
        assert_eq!(refused.retry_after_secs, 86_400);
        u.add_tokens(-450, T0 + 2);
        assert_eq!(u.used(T0 + 2).tpd, 50);
        assert!(u.admit(&limits, 1, T0 + 3).is_ok());
        u.add_tokens(-1_000, T0 + 4);
        assert_eq!(u.used(T0 + 4).tpm, 0, "never below zero");
        assert_eq!(u.used(T0 + DAY_MS), Used::default(), "a new day");
    }

    #[test]
    fn no_limits_admit_everything() {
        let mut u = ClientUsage::default();
        for i in 0..100 {
            assert!(u.admit(&ClientLimits::default(), 1_000, T0 + i).is_ok());
        }
        assert_eq!(u.used(T0 + 100).rpm, 100);
    }
}
