//! The budget of one (platform, model, key): per-minute and per-day request and token limits, in-flight leases
//! and cooldowns after failures.
//!
//! A request takes a lease before it is sent (its estimated tokens reserved) and settles it when the answer ends
//! (reconciled with the real usage), so concurrent requests can never overshoot a limit. governor smooths the
//! per-minute request rate; the sliding windows make the limits exact.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::window::MinuteWindow;
use crate::catalog::Limits;
use crate::providers::FailureKind;

const DAY_MS: i64 = 86_400_000;

/// Permission to send one request; must be settled.
#[must_use = "a lease must be settled, or its reservation stays held until the window passes"]
#[derive(Debug, PartialEq, Eq)]
pub struct Lease {
    id: u64,
}

/// Why a budget refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Benched after a failure until this Unix-ms instant.
    Cooling {
        /// When the cooldown ends.
        until_ms: i64,
        /// Whether the bench follows upstream failures (errors, timeouts) rather than a rate limit.
        outage: bool,
    },
    /// A window is full.
    Exhausted {
        /// Which window: `rpm`, `rpd`, `tpm` or `tpd`.
        window: &'static str,
        /// Seconds until it has room again.
        retry_after_secs: u64,
    },
    /// The request alone is larger than a token limit; it can never fit this key.
    TooLarge,
}

impl Denial {
    /// Seconds until this candidate may be usable again, if ever.
    pub fn retry_after_secs(&self, now_ms: i64) -> Option<u64> {
        match *self {
            Denial::Cooling { until_ms, .. } => Some(
                u64::try_from((until_ms - now_ms + 999) / 1000)
                    .unwrap_or(1)
                    .max(1),
            ),
            Denial::Exhausted {
                retry_after_secs, ..
            } => Some(retry_after_secs.max(1)),
            Denial::TooLarge => None,
        }
    }
}

/// How a leased request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// An answer was served; `tokens` is the real usage when the upstream reported it.
    Served {
        /// Prompt + completion tokens, if known.
        tokens: Option<u64>,
    },
    /// The attempt failed.
    Failed(FailureKind),
}

/// Used and limit of one window, for `/api/budgets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUse {
    /// Used in the current window.
    pub used: u64,
    /// The limit, if one is known.
    pub limit: Option<u32>,
}

/// A point-in-time view of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Requests in the last minute.
    pub rpm: WindowUse,
    /// Requests today (UTC).
    pub rpd: WindowUse,
    /// Tokens in the last minute.
    pub tpm: WindowUse,
    /// Tokens today (UTC).
    pub tpd: WindowUse,
    /// End of the current cooldown, if cooling.
    pub cooldown_until_ms: Option<i64>,
    /// Requests sent and not yet settled.
    pub in_flight: usize,
}

/// What of a budget outlives a restart: the current day's use and an active bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carried {
    /// The day the counts belong to (days since the Unix epoch, UTC).
    pub day: i64,
    /// Requests that day.
    pub day_requests: u64,
    /// Tokens that day.
    pub day_tokens: u64,
    /// End of the bench, if one is active.
    pub cooldown_until_ms: Option<i64>,
    /// Whether the bench followed upstream failures rather than a rate limit.
    pub cooldown_outage: bool,
}

#[derive(Debug)]
struct Reservation {
    tokens: u64,
    at_sec: i64,
    day: i64,
}

/// The budget state of one (platform, model, key).
#[derive(Debug)]
pub struct Budget {
    limits: Limits,
    smoothing: Option<DefaultDirectRateLimiter>,
    requests: MinuteWindow,
    tokens: MinuteWindow,
    day: i64,
    day_requests: u64,
    day_tokens: u64,
    leases: HashMap<u64, Reservation>,
    next_lease: u64,
    cooldown_until_ms: Option<i64>,
    cooldown_outage: bool,
    consecutive_failures: u32,
}

impl Budget {
    /// A fresh budget with the given limits.
    pub fn new(limits: Limits) -> Budget {
        Budget {
            limits,
            smoothing: smoothing(limits),
            requests: MinuteWindow::default(),
            tokens: MinuteWindow::default(),
            day: 0,
            day_requests: 0,
            day_tokens: 0,
            leases: HashMap::new(),
            next_lease: 0,
            cooldown_until_ms: None,
            cooldown_outage: false,
            consecutive_failures: 0,
        }
    }

    /// Replaces the limits (catalog or key edits) keeping what was used.
    pub fn set_limits(&mut self, limits: Limits) {
        if limits != self.limits {
            self.limits = limits;
            self.smoothing = smoothing(limits);
        }
    }

    /// Admits a request estimated at `tokens`, or says why not and for how long.
    pub fn acquire(&mut self, tokens: u64, now_ms: i64) -> Result<Lease, Denial> {
        if let Some(until_ms) = self.cooldown_until_ms {
            if until_ms > now_ms {
                return Err(Denial::Cooling {
                    until_ms,
                    outage: self.cooldown_outage,
                });
            }
            self.cooldown_until_ms = None;
        }
        let l = self.limits;
        if l.tpm.is_some_and(|t| tokens > u64::from(t))
            || l.tpd.is_some_and(|t| tokens > u64::from(t))
        {
            return Err(Denial::TooLarge);
        }
        self.roll_day(now_ms);
        let now_sec = now_ms.div_euclid(1000);
        let until_tomorrow = u64::try_from((DAY_MS - now_ms.rem_euclid(DAY_MS)) / 1000)
            .unwrap_or(1)
            .max(1);
        if let Some(rpm) = l.rpm.map(u64::from) {
            if self.requests.sum(now_sec) + 1 > rpm {
                let wait = self
                    .requests
                    .secs_until_at_most(now_sec, rpm.saturating_sub(1));
                return Err(Denial::Exhausted {
                    window: "rpm",
                    retry_after_secs: wait,
                });
            }
        }
        if l.rpd
            .is_some_and(|rpd| self.day_requests + 1 > u64::from(rpd))
        {
            return Err(Denial::Exhausted {
                window: "rpd",
                retry_after_secs: until_tomorrow,
            });
        }
        if let Some(tpm) = l.tpm.map(u64::from) {
            if self.tokens.sum(now_sec) + tokens > tpm {
                let wait = self.tokens.secs_until_at_most(now_sec, tpm - tokens);
                return Err(Denial::Exhausted {
                    window: "tpm",
                    retry_after_secs: wait,
                });
            }
        }
        if l.tpd
            .is_some_and(|tpd| self.day_tokens + tokens > u64::from(tpd))
        {
            return Err(Denial::Exhausted {
                window: "tpd",
                retry_after_secs: until_tomorrow,
            });
        }
        if let Some(limiter) = &self.smoothing {
            if let Err(not_until) = limiter.check() {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(Denial::Exhausted {
                    window: "rpm",
                    retry_after_secs: wait.as_secs().max(1),
                });
            }
        }
        self.requests.add(now_sec, 1);
        self.tokens.add(now_sec, tokens);
        self.day_requests += 1;
        self.day_tokens += tokens;
        self.next_lease += 1;
        self.leases.insert(
            self.next_lease,
            Reservation {
                tokens,
                at_sec: now_sec,
                day: self.day,
            },
        );
        Ok(Lease {
            id: self.next_lease,
        })
    }

    /// Ends a lease: reconciles tokens with the real usage, and benches the key after failures.
    pub fn settle(&mut self, lease: Lease, settlement: Settlement, now_ms: i64) {
        let Some(reservation) = self.leases.remove(&lease.id) else {
            return;
        };
        self.roll_day(now_ms);
        let actual = match settlement {
            Settlement::Served { tokens } => tokens.unwrap_or(reservation.tokens),
            Settlement::Failed(_) => 0,
        };
        if actual >= reservation.tokens {
            let extra = actual - reservation.tokens;
            self.tokens.add(now_ms.div_euclid(1000), extra);
            if reservation.day == self.day {
                self.day_tokens += extra;
            }
        } else {
            let refund = reservation.tokens - actual;
            self.tokens.remove(reservation.at_sec, refund);
            if reservation.day == self.day {
                self.day_tokens = self.day_tokens.saturating_sub(refund);
            }
        }
        match settlement {
            Settlement::Served { .. } => self.consecutive_failures = 0,
            Settlement::Failed(kind) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if let Some(cool) = cooldown(kind, self.consecutive_failures) {
                    let until =
                        now_ms.saturating_add(i64::try_from(cool.as_millis()).unwrap_or(i64::MAX));
                    if self.cooldown_until_ms.is_none_or(|u| until >= u) {
                        self.cooldown_until_ms = Some(until);
                        self.cooldown_outage = !matches!(
                            kind,
                            FailureKind::RateLimited { .. } | FailureKind::QuotaExhausted { .. }
                        );
                    }
                }
            }
        }
    }

    /// The current use of every window.
    pub fn snapshot(&mut self, now_ms: i64) -> Snapshot {
        self.roll_day(now_ms);
        let now_sec = now_ms.div_euclid(1000);
        let l = self.limits;
        Snapshot {
            rpm: WindowUse {
                used: self.requests.sum(now_sec),
                limit: l.rpm,
            },
            rpd: WindowUse {
                used: self.day_requests,
                limit: l.rpd,
            },
            tpm: WindowUse {
                used: self.tokens.sum(now_sec),
                limit: l.tpm,
            },
            tpd: WindowUse {
                used: self.day_tokens,
                limit: l.tpd,
            },
            cooldown_until_ms: self.cooldown_until_ms.filter(|&u| u > now_ms),
            in_flight: self.leases.len(),
        }
    }

    /// The part of this budget a restart must not lose.
    pub fn carried(&mut self, now_ms: i64) -> Carried {
        self.roll_day(now_ms);
        let cooldown_until_ms = self.cooldown_until_ms.filter(|&u| u > now_ms);
        Carried {
            day: self.day,
            day_requests: self.day_requests,
            day_tokens: self.day_tokens,
            cooldown_until_ms,
            cooldown_outage: cooldown_until_ms.is_some() && self.cooldown_outage,
        }
    }

    /// Resumes from what an earlier run saved: its counts if they are of the current day, its bench if that
    /// has not ended.
    pub fn resume(&mut self, saved: Carried, now_ms: i64) {
        self.roll_day(now_ms);
        if saved.day == self.day {
            self.day_requests = self.day_requests.max(saved.day_requests);
            self.day_tokens = self.day_tokens.max(saved.day_tokens);
        }
        if let Some(until) = saved.cooldown_until_ms.filter(|&u| u > now_ms) {
            if self.cooldown_until_ms.is_none_or(|u| until > u) {
                self.cooldown_until_ms = Some(until);
                self.cooldown_outage = saved.cooldown_outage;
            }
        }
    }

    fn roll_day(&mut self, now_ms: i64) {
        let day = now_ms.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.day_requests = 0;
            self.day_tokens = 0;
        }
    }
}

fn smoothing(limits: Limits) -> Option<DefaultDirectRateLimiter> {
    limits
        .rpm
        .and_then(NonZeroU32::new)
        .map(|rpm| RateLimiter::direct(Quota::per_minute(rpm)))
}

/// How long a failure benches a (platform, model, key); `None` means not at all.
///
/// Rate limits honour the provider's hint; transient errors bench only when they repeat, so a single blip never
/// turns away the next request; timeouts bench at once so no request waits on the same silent route twice.
pub fn cooldown(kind: FailureKind, consecutive_failures: u32) -> Option<Duration> {
    let backoff = |base: u64, cap: u64| {
        let exp = consecutive_failures.saturating_sub(1).min(16);
        Duration::from_secs(base.saturating_mul(1 << exp).min(cap))
    };
    match kind {
        FailureKind::RateLimited { retry_after } => Some(
            retry_after
                .filter(|d| !d.is_zero())
                .unwrap_or_else(|| backoff(30, 600)),
        ),
        FailureKind::QuotaExhausted { retry_after } => {
            Some(retry_after.unwrap_or(Duration::from_secs(3600)))
        }
        FailureKind::ModelUnavailable => Some(Duration::from_secs(600)),
        FailureKind::Timeout => Some(backoff(30, 300)),
        FailureKind::Interrupted => Some(backoff(10, 300)),
        FailureKind::Transient if consecutive_failures >= 2 => Some(backoff(1, 60)),
        FailureKind::Transient | FailureKind::BadRequest | FailureKind::InvalidKey => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_000_000_000;

    fn limits(rpm: Option<u32>, rpd: Option<u32>, tpm: Option<u32>, tpd: Option<u32>) -> Limits {
        Limits { rpm, rpd, tpm, tpd }
    }

    #[test]
    fn rpm_admits_exactly_the_limit() {
        let mut b = Budget::new(limits(Some(2), None, None, None));
        let a = b.acquire(10, T0).unwrap();
        let c = b.acquire(10, T0 + 1000).unwrap();
        let denied = b.acquire(10, T0 + 2000).unwrap_err();
        assert_eq!(
            denied,
            Denial::Exhausted {
                window: "rpm",
                retry_after_secs: 58
            }
        );
        b.settle(a, Settlement::Served { tokens: Some(5) }, T0 + 2000);
        b.settle(c, Settlement::Served { tokens: Some(5) }, T0 + 2000);
        assert!(
            matches!(
                b.acquire(10, T0 + 2000),
                Err(Denial::Exhausted { window: "rpm", .. })
            ),
            "in-flight or not, the window counts"
        );
    }

    #[test]
    fn concurrent_leases_never_overshoot_tokens() {
        let mut b = Budget::new(limits(None, None, Some(100), None));
        let l1 = b.acquire(60, T0).unwrap();
        assert!(matches!(
            b.acquire(60, T0),
            Err(Denial::Exhausted { window: "tpm", .. })
        ));
        b.settle(l1, Settlement::Served { tokens: Some(20) }, T0);
        let l2 = b.acquire(60, T0).unwrap();
        assert_eq!(b.snapshot(T0).tpm.used, 80);
        b.settle(l2, Settlement::Failed(FailureKind::Transient), T0);
        assert_eq!(
            b.snapshot(T0).tpm.used,
            20,
            "a failed attempt refunds its reservation"
        );
    }

    #[test]
    fn oversized_request_never_fits() {
        let mut b = Budget::new(limits(None, None, Some(100), None));
        assert_eq!(b.acquire(101, T0), Err(Denial::TooLarge));
    }

    #[test]
    fn day_windows_reset_at_utc_midnight() {
        let mut b = Budget::new(limits(None, Some(1), None, None));
        let l = b.acquire(1, T0).unwrap();
        b.settle(l, Settlement::Served { tokens: None }, T0);
        let Err(Denial::Exhausted {
            window: "rpd",
            retry_after_secs,
        }) = b.acquire(1, T0)
        else {
            panic!()
        };
        let next_midnight = (T0 / DAY_MS + 1) * DAY_MS;
        assert_eq!(
            retry_after_secs,
            u64::try_from((next_midnight - T0) / 1000).unwrap()
        );
        assert!(b.acquire(1, next_midnight).is_ok());
    }

    #[test]
    fn rate_limit_cools_for_the_hint_and_transient_only_when_repeated() {
        let mut b = Budget::new(Limits::default());
        let l = b.acquire(1, T0).unwrap();
        let hint = Some(Duration::from_secs(30));
        b.settle(
            l,
            Settlement::Failed(FailureKind::RateLimited { retry_after: hint }),
            T0,
        );
        assert_eq!(
            b.acquire(1, T0 + 29_000),
            Err(Denial::Cooling {
                until_ms: T0 + 30_000,
                outage: false
            })
        );
        assert_eq!(
            Denial::Cooling {
                until_ms: T0 + 30_000,
                outage: false
            }
            .retry_after_secs(T0 + 29_000),
            Some(1)
        );
        let l = b.acquire(1, T0 + 30_000).unwrap();
        b.settle(l, Settlement::Served { tokens: None }, T0 + 30_000);

        let l = b.acquire(1, T0 + 31_000).unwrap();
        b.settle(l, Settlement::Failed(FailureKind::Transient), T0 + 31_000);
        let l = b.acquire(1, T0 + 31_000).expect("one blip does not bench");
        b.settle(l, Settlement::Failed(FailureKind::Transient), T0 + 31_000);
        assert!(matches!(
            b.acquire(1, T0 + 31_000),
            Err(Denial::Cooling { outage: true, .. })
        ));
    }

    #[test]
    fn a_resumed_budget_keeps_todays_use_and_its_bench() {
        let limits = limits(None, Some(3), None, Some(1000));
        let mut before = Budget::new(limits);
        for _ in 0..2 {
            let l = before.acquire(100, T0).unwrap();
            before.settle(l, Settlement::Served { tokens: Some(150) }, T0);
        }
        let l = before.acquire(1, T0).unwrap();
        let hint = Some(Duration::from_secs(600));
        before.settle(
            l,
            Settlement::Failed(FailureKind::RateLimited { retry_after: hint }),
            T0,
        );
        let saved = before.carried(T0 + 1000);
        assert_eq!(saved.day_requests, 3);
        assert_eq!(saved.day_tokens, 300);
        assert_eq!(saved.cooldown_until_ms, Some(T0 + 600_000));

        let mut after = Budget::new(limits);
        after.resume(saved, T0 + 2000);
        assert!(matches!(
            after.acquire(1, T0 + 2000),
            Err(Denial::Cooling { outage: false, .. })
        ));
        assert!(
            matches!(
                after.acquire(1, T0 + 700_000),
                Err(Denial::Exhausted { window: "rpd", .. })
            ),
            "the daily quota spent before the restart stays spent"
        );

        let mut tomorrow = Budget::new(limits);
        tomorrow.resume(saved, T0 + DAY_MS);
        assert!(
            tomorrow.acquire(1, T0 + DAY_MS).is_ok(),
            "yesterday's counts do not carry into a new day"
        );
    }

    #[test]
    fn bad_requests_never_bench() {
        assert_eq!(cooldown(FailureKind::BadRequest, 5), None);
        assert_eq!(
            cooldown(FailureKind::RateLimited { retry_after: None }, 1),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            cooldown(FailureKind::RateLimited { retry_after: None }, 3),
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn limits_can_change_without_forgetting_use() {
        let mut b = Budget::new(limits(Some(10), None, None, None));
        let l = b.acquire(1, T0).unwrap();
        b.set_limits(limits(Some(1), None, None, None));
        assert!(b.acquire(1, T0).is_err());
        b.settle(l, Settlement::Served { tokens: None }, T0);
        assert_eq!(
            b.snapshot(T0).rpm,
            WindowUse {
                used: 1,
                limit: Some(1)
            }
        );
    }
}
