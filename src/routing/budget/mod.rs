//! The budget of one (platform, model, key): per-minute and per-day request and token limits, in-flight leases,
//! cooldowns after failures, and what the provider taught it.
//!
//! A request takes a lease before it is sent (its estimated tokens reserved) and settles it when the answer ends.
//! While in flight it counts in every window; once settled it counts from the moment the upstream answered,
//! which is never earlier than the provider counted it, so the budget's windows only ever close after the
//! provider's have. Concurrent requests therefore never overshoot a limit the budget knows. When the provider
//! states a limit or its remaining quota, the budget tightens to it; a refusal it did not predict is a miss,
//! recorded, and teaches the limit it revealed. governor smooths the per-minute request rate; the logs make the
//! limits exact.

pub mod keywide;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use super::estimate::{Calibration, Cost};
use super::learned::{Learned, Misses};
use super::window::{Entry, UsageLog};
use crate::catalog::{Limits, Window};
use crate::day_window::DayWindow;
use crate::failure::{Failure, FailureKind};
use crate::quota_news::QuotaNews;
use crate::quota_news::WindowReport;

const MINUTE_MS: i64 = 60_000;
/// Minute-window uses closer together than this are kept as one (at the later expiry).
const MINUTE_MERGE_MS: i64 = 200;
/// Day-window uses closer together than this are kept as one (at the later expiry): a rolling day then frees its
/// use at most 15 minutes late, and its saved log stays under a hundred entries.
const DAY_MERGE_MS: i64 = 15 * 60_000;
/// A lease not settled within this long is taken as used (its reservation, counted when it ran out) and released:
/// the safety net for a lease lost unsettled, which would otherwise hold its place in every window for good.
const LEASE_TTL_MS: i64 = 15 * 60_000;
/// The wait announced when requests in flight alone fill a window: room comes back as they settle, typically
/// within seconds.
const IN_FLIGHT_WAIT_MS: i64 = 1000;
/// A retry hint longer than this means a refusal hit a daily window.
const DAILY_HINT: Duration = Duration::from_secs(60);

/// The budget's own "now" for governor: the instant of the call being decided, so smoothing and windows agree on
/// time (and tests drive both with the same clock).
#[derive(Clone, Debug, Default)]
struct BudgetClock(Arc<AtomicI64>);

impl BudgetClock {
    fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::Relaxed);
    }
}

impl Clock for BudgetClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.load(Ordering::Relaxed)).unwrap_or(0))
    }
}

/// governor's per-minute request smoothing, on the budget's clock.
type Smoothing = RateLimiter<NotKeyed, InMemoryState, BudgetClock, NoOpMiddleware<Duration>>;

/// Permission to send one request; must be settled.
#[must_use = "a lease must be settled, or its reservation stays held"]
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
        /// Which window.
        window: Window,
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
            Denial::Cooling { until_ms, .. } => Some(secs_ceil(until_ms - now_ms)),
            Denial::Exhausted {
                retry_after_secs, ..
            } => Some(retry_after_secs.max(1)),
            Denial::TooLarge => None,
        }
    }
}

/// How a leased request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// An answer was served.
    Served {
        /// Prompt + completion tokens, as reported or estimated; the reservation when unknown.
        tokens: Option<u64>,
        /// Prompt tokens as the upstream reported them, which calibrates later estimates.
        reported_prompt: Option<u64>,
    },
    /// The attempt failed.
    Failed(Failure),
    /// The request was dropped mid-attempt (its client went away): the upstream may have counted it.
    Abandoned,
    /// The lease was never used: nothing was sent, so nothing counts.
    Unused,
}

/// Everything a budget learns from one finished attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How it ended.
    pub settlement: Settlement,
    /// When the upstream answered or the attempt failed (Unix ms); its use counts from then.
    pub answered_ms: i64,
    /// What the upstream said about the key's quota.
    pub news: QuotaNews,
}

/// Used and limit of one window, for `/api/budgets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUse {
    /// Used in the current window, requests in flight included.
    pub used: u64,
    /// The limit in force (the catalog's, or a stricter one learned), if one is known.
    pub limit: Option<u32>,
}

/// A point-in-time view of a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Requests in the last minute.
    pub rpm: WindowUse,
    /// Requests in the current day window.
    pub rpd: WindowUse,
    /// Tokens in the last minute.
    pub tpm: WindowUse,
    /// Tokens in the current day window.
    pub tpd: WindowUse,
    /// End of the current cooldown, if cooling.
    pub cooldown_until_ms: Option<i64>,
    /// Requests sent and not yet settled.
    pub in_flight: usize,
    /// Limits the provider stated or its refusals revealed (the stricter of these and the catalog's apply).
    pub learned: Learned,
    /// Refusals the budget did not predict.
    pub misses: Misses,
    /// When the day windows reset.
    pub day_window: DayWindow,
}

impl Snapshot {
    /// The use of one window.
    pub fn window(&self, window: Window) -> WindowUse {
        match window {
            Window::Rpm => self.rpm,
            Window::Rpd => self.rpd,
            Window::Tpm => self.tpm,
            Window::Tpd => self.tpd,
        }
    }
}

/// What of a budget outlives a restart: the use still counting in its windows, its bench, what it learned.
/// Serialized, it is the saved `detail` (the bench has columns of its own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// Minute-window use (requests in flight count as used now).
    #[serde(default)]
    pub minute: Vec<Entry>,
    /// Day-window use.
    #[serde(default)]
    pub day: Vec<Entry>,
    /// End of the bench, if one is active.
    #[serde(skip)]
    pub cooldown_until_ms: Option<i64>,
    /// Whether the bench followed upstream failures rather than a rate limit.
    #[serde(skip)]
    pub cooldown_outage: bool,
    /// Limits learned from the provider.
    #[serde(default)]
    pub learned: Learned,
    /// Refusals not predicted.
    #[serde(default)]
    pub misses: Misses,
}

/// What a lease in flight holds.
#[derive(Debug, Clone, Copy)]
struct Reservation {
    /// Tokens reserved in the token windows.
    tokens: u64,
    /// The prompt estimate, to calibrate against the reported usage.
    prompt_estimate: u64,
    /// When it was taken (Unix ms).
    acquired_ms: i64,
}

/// The budget state of one (platform, model, key).
#[derive(Debug)]
pub struct Budget {
    catalog: Limits,
    learned: Learned,
    /// The limits in force: the catalog's tightened by what was learned.
    limits: Limits,
    clock: BudgetClock,
    smoothing: Option<Smoothing>,
    minute: UsageLog,
    day: UsageLog,
    /// Each lease in flight, by id.
    leases: HashMap<u64, Reservation>,
    calibration: Calibration,
    in_flight_tokens: u64,
    next_lease: u64,
    cooldown_until_ms: Option<i64>,
    cooldown_outage: bool,
    consecutive_failures: u32,
    misses: Misses,
}

impl Budget {
    /// A fresh budget with the catalog's limits.
    pub fn new(catalog: Limits) -> Budget {
        let clock = BudgetClock::default();
        Budget {
            catalog,
            learned: Learned::default(),
            limits: catalog,
            smoothing: smoothing(catalog, &clock),
            clock,
            minute: UsageLog::new(MINUTE_MERGE_MS),
            day: UsageLog::new(DAY_MERGE_MS),
            leases: HashMap::new(),
            calibration: Calibration::default(),
            in_flight_tokens: 0,
            next_lease: 0,
            cooldown_until_ms: None,
            cooldown_outage: false,
            consecutive_failures: 0,
            misses: Misses::default(),
        }
    }

    /// Replaces the catalog's limits (catalog or key edits) keeping what was used and learned.
    pub fn set_limits(&mut self, catalog: Limits) {
        self.catalog = catalog;
        self.refresh_limits();
    }

    fn refresh_limits(&mut self) {
        let limits = self.catalog.tightened_by(&self.learned.limits());
        if limits != self.limits {
            if limits.rpm != self.limits.rpm {
                self.smoothing = smoothing(limits, &self.clock);
            }
            self.limits = limits;
        }
    }

    /// Admits a request of the estimated `cost`, or says why not and for how long.
    pub fn acquire(&mut self, cost: Cost, now_ms: i64) -> Result<Lease, Denial> {
        let tokens = self.check(cost, now_ms)?;
        if let Some(limiter) = &self.smoothing {
            self.clock.set(now_ms);
            if let Err(not_until) = limiter.check() {
                let wait = not_until.wait_time_from(self.clock.now());
                return Err(Denial::Exhausted {
                    window: Window::Rpm,
                    retry_after_secs: wait.as_secs().max(1),
                });
            }
        }
        self.next_lease += 1;
        self.leases.insert(
            self.next_lease,
            Reservation {
                tokens,
                prompt_estimate: cost.prompt,
                acquired_ms: now_ms,
            },
        );
        self.in_flight_tokens += tokens;
        Ok(Lease {
            id: self.next_lease,
        })
    }

    /// Whether the windows and the bench would admit a request of `cost` now, taking no lease: every check of
    /// [`Budget::acquire`] but governor's smoothing, which cannot be asked without spending. Answers the tokens
    /// the request would reserve. A key's shared budget is asked this first, so a request it turns away spends
    /// nothing of a model's budget.
    pub fn check(&mut self, cost: Cost, now_ms: i64) -> Result<u64, Denial> {
        if let Some(until_ms) = self.cooldown_until_ms {
            if until_ms > now_ms {
                return Err(Denial::Cooling {
                    until_ms,
                    outage: self.cooldown_outage,
                });
            }
            self.cooldown_until_ms = None;
        }
        if self.learned.expire(now_ms) {
            self.refresh_limits();
        }
        self.release_lost_leases(now_ms);
        let tokens = self.calibration.reserve(cost);
        let l = self.limits;
        if l.tpm.is_some_and(|t| tokens > u64::from(t))
            || l.tpd.is_some_and(|t| tokens > u64::from(t))
        {
            return Err(Denial::TooLarge);
        }
        for window in Window::ALL {
            if let Some(wait_ms) = self.wait_for_room(window, tokens, now_ms) {
                return Err(Denial::Exhausted {
                    window,
                    retry_after_secs: secs_ceil(wait_ms),
                });
            }
        }
        Ok(tokens)
    }

    /// Takes leases older than [`LEASE_TTL_MS`] as used and releases them.
    fn release_lost_leases(&mut self, now_ms: i64) {
        let lost: Vec<(u64, Reservation)> = self
            .leases
            .iter()
            .filter(|(_, r)| r.acquired_ms + LEASE_TTL_MS <= now_ms)
            .map(|(id, r)| (*id, *r))
            .collect();
        for (id, reservation) in lost {
            log::warn!("a lease was never settled; counting it as used after {LEASE_TTL_MS} ms");
            self.leases.remove(&id);
            self.in_flight_tokens -= reservation.tokens;
            self.count(
                reservation.acquired_ms + LEASE_TTL_MS,
                1,
                reservation.tokens,
            );
        }
    }

    /// `None` if `window` has room for one more request of `tokens`, else how many ms until it should.
    fn wait_for_room(&mut self, window: Window, tokens: u64, now_ms: i64) -> Option<i64> {
        let limit = u64::from(self.limits.get(window)?);
        let need = window.count_of((1, tokens));
        if self.used(window, now_ms) + need <= limit {
            return None;
        }
        let Some(settled_target) = limit.checked_sub(self.in_flight(window) + need) else {
            return Some(IN_FLIGHT_WAIT_MS);
        };
        let (requests, tokens) = window.pair(settled_target, u64::MAX);
        Some(
            self.log(window)
                .ms_until_at_most(now_ms, requests, tokens)
                .max(1),
        )
    }

    /// The log `window` counts in: the minute's or the day's.
    fn log(&mut self, window: Window) -> &mut UsageLog {
        if window.per_day() {
            &mut self.day
        } else {
            &mut self.minute
        }
    }

    /// Settled use of `window` still counting now.
    fn settled(&mut self, window: Window, now_ms: i64) -> u64 {
        window.count_of(self.log(window).used(now_ms))
    }

    /// Use of `window` now: settled use still counting plus everything in flight.
    fn used(&mut self, window: Window, now_ms: i64) -> u64 {
        self.settled(window, now_ms) + self.in_flight(window)
    }

    /// What the leases in flight hold in `window` (requests or reserved tokens).
    fn in_flight(&self, window: Window) -> u64 {
        window.count_of((self.leases.len() as u64, self.in_flight_tokens))
    }

    /// Counts one request's use from `at_ms` in the minute and day windows.
    fn count(&mut self, at_ms: i64, requests: u64, tokens: u64) {
        self.minute.add(at_ms + MINUTE_MS, requests, tokens);
        let day_expiry = self.limits.day_window().expiry(at_ms);
        self.day.add(day_expiry, requests, tokens);
    }

    /// Ends a lease: counts what it used, learns from what the provider said, benches the key after failures.
    pub fn settle(&mut self, lease: Lease, outcome: Outcome, now_ms: i64) {
        let Some(Reservation {
            tokens: reserved,
            prompt_estimate,
            ..
        }) = self.leases.remove(&lease.id)
        else {
            return;
        };
        self.in_flight_tokens -= reserved;
        let at_ms = outcome.answered_ms.min(now_ms);
        match outcome.settlement {
            Settlement::Served {
                tokens,
                reported_prompt,
            } => {
                if let Some(reported) = reported_prompt {
                    self.calibration.observe(prompt_estimate, reported);
                }
                let tokens = tokens.unwrap_or(reserved);
                self.observe(&outcome.news, (1, tokens), now_ms);
                self.count(at_ms, 1, tokens);
                self.consecutive_failures = 0;
            }
            Settlement::Abandoned => self.count(at_ms, 1, reserved),
            Settlement::Unused => {}
            Settlement::Failed(failure) => {
                let blamed = failure.kind.blames_route();
                if blamed {
                    self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                }
                let refused = matches!(
                    failure.kind,
                    FailureKind::RateLimited { .. } | FailureKind::QuotaExhausted { .. }
                );
                self.observe(&outcome.news, (0, 0), now_ms);
                if refused {
                    // A refused request is not counted by the provider; it only teaches.
                    self.missed(reserved, &failure, &outcome.news, now_ms);
                } else {
                    // The provider may have counted it; its tokens are unknown.
                    self.count(at_ms, 1, 0);
                    if let Some(cool) =
                        cooldown(failure.kind, self.consecutive_failures).filter(|_| blamed)
                    {
                        self.bench(now_ms, cool, true);
                    }
                }
            }
        }
    }

    /// Takes in what the provider stated about each window: stricter limits, and use it knows of that the budget
    /// does not (other clients of the same key, or use from before a lost save). `this` is the settling
    /// request's own use, which the provider's figures include.
    fn observe(&mut self, news: &QuotaNews, this: (u64, u64), now_ms: i64) {
        for &(window, report) in &news.windows {
            if let Some(limit) = report.limit.and_then(|l| u32::try_from(l).ok()) {
                if self.learned.stated(window, limit, now_ms) {
                    self.refresh_limits();
                }
            }
            self.absorb_remaining(window, report, this, now_ms);
        }
    }

    fn absorb_remaining(
        &mut self,
        window: Window,
        report: WindowReport,
        this: (u64, u64),
        now_ms: i64,
    ) {
        let Some(remaining) = report.remaining else {
            return;
        };
        let reset_ms = report
            .reset
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let Some(limit) = self.limits.get(window).map(u64::from) else {
            if remaining == 0 {
                if let Some(reset_ms) = reset_ms {
                    self.bench(
                        now_ms,
                        Duration::from_millis(reset_ms.unsigned_abs()),
                        false,
                    );
                }
            }
            return;
        };
        let theirs = limit.saturating_sub(remaining);
        let ours = self.used(window, now_ms) + window.count_of(this);
        if theirs <= ours {
            return;
        }
        let expires = match reset_ms {
            Some(reset) => now_ms.saturating_add(reset.max(1)),
            None if window.per_day() => self.limits.day_window().expiry(now_ms),
            None => now_ms + MINUTE_MS,
        };
        let (requests, tokens) = window.pair(theirs - ours, 0);
        self.log(window).add(expires, requests, tokens);
    }

    /// A refusal the budget did not predict: records it, learns the window's limit (as stated, or as revealed
    /// by what the budget had sent), and benches the key for the provider's hint, or until the window has room
    /// under the learned limit, or, knowing neither, for a backoff.
    fn missed(&mut self, reserved: u64, failure: &Failure, news: &QuotaNews, now_ms: i64) {
        let hint = match failure.kind {
            FailureKind::RateLimited { retry_after }
            | FailureKind::QuotaExhausted { retry_after } => retry_after.filter(|d| !d.is_zero()),
            _ => None,
        };
        let candidates: &[Window] = if !news.exceeded.is_empty() {
            &news.exceeded
        } else if hint.is_some_and(|h| h > DAILY_HINT) {
            &[Window::Rpd, Window::Tpd]
        } else {
            &Window::ALL
        };
        let window = self.likeliest(candidates, reserved, news, now_ms);
        self.misses.count += 1;
        self.misses.last_ms = Some(now_ms);
        self.misses.window = window;
        self.misses.message = Some(failure.message.clone());
        let mut taught = false;
        if let Some(window) = window {
            // A limit the refusal stated was taken in with the rest of the news.
            let stated = news.report(window).is_some_and(|r| r.limit.is_some());
            let revealed = self.revealed_limit(window, reserved, now_ms);
            if let Some(limit) = revealed
                .and_then(|l| u32::try_from(l).ok())
                .filter(|_| !stated)
            {
                if self.learned.revealed(window, limit, now_ms) {
                    self.refresh_limits();
                }
            }
            taught = self.limits.get(window).is_some()
                && self.wait_for_room(window, reserved, now_ms).is_some();
        }
        match hint {
            Some(hint) => self.bench(now_ms, hint, false),
            None if taught => {}
            None => {
                if let Some(cool) = cooldown(failure.kind, self.consecutive_failures) {
                    self.bench(now_ms, cool, false);
                }
            }
        }
    }

    /// Among `candidates`, the window the refusal most likely hit: one the provider's figures say is spent; else,
    /// leaving out those its figures say have room, the one the budget had used the largest share of.
    fn likeliest(
        &mut self,
        candidates: &[Window],
        reserved: u64,
        news: &QuotaNews,
        now_ms: i64,
    ) -> Option<Window> {
        if let [only] = candidates {
            return Some(*only);
        }
        let need = |w: Window| w.count_of((1, reserved));
        let remaining = |w: Window| news.report(w).and_then(|r| r.remaining);
        if let Some(spent) = candidates
            .iter()
            .find(|w| remaining(**w).is_some_and(|left| left < need(**w)))
        {
            return Some(*spent);
        }
        let mut best: Option<(Window, f64)> = None;
        for &window in candidates {
            let has_room = remaining(window).is_some_and(|left| left >= need(window));
            let Some(limit) = self.limits.get(window).filter(|_| !has_room) else {
                continue;
            };
            let used = self.used(window, now_ms) + need(window);
            let share = used as f64 / f64::from(limit.max(1));
            if best.is_none_or(|(_, s)| share > s) {
                best = Some((window, share));
            }
        }
        best.map(|(w, _)| w)
    }

    /// The most `window` can allow, given that it refused a request: everything else the budget had sent that
    /// still counts, settled or in flight (for tokens, plus this request's reservation less one, since the
    /// provider refused because the sum went over). Requests in flight may reach the provider after the refused
    /// one, so this can be high; but one of them refused in turn settles later and teaches a tighter limit.
    /// `None` when the budget had sent nothing else, so the refusal reveals nothing.
    fn revealed_limit(&mut self, window: Window, reserved: u64, now_ms: i64) -> Option<u64> {
        let sent = self.used(window, now_ms);
        let overshoot = window.count_of((0, reserved.saturating_sub(1)));
        (sent > 0).then_some(sent + overshoot)
    }

    fn bench(&mut self, now_ms: i64, length: Duration, outage: bool) {
        let until = now_ms.saturating_add(i64::try_from(length.as_millis()).unwrap_or(i64::MAX));
        if self.cooldown_until_ms.is_none_or(|u| until >= u) {
            self.cooldown_until_ms = Some(until);
            self.cooldown_outage = outage;
        }
    }

    /// The current use of every window.
    pub fn snapshot(&mut self, now_ms: i64) -> Snapshot {
        if self.learned.expire(now_ms) {
            self.refresh_limits();
        }
        let mut window = |w: Window| WindowUse {
            used: self.used(w, now_ms),
            limit: self.limits.get(w),
        };
        let (rpm, rpd, tpm, tpd) = (
            window(Window::Rpm),
            window(Window::Rpd),
            window(Window::Tpm),
            window(Window::Tpd),
        );
        Snapshot {
            rpm,
            rpd,
            tpm,
            tpd,
            cooldown_until_ms: self.cooldown_until_ms.filter(|&u| u > now_ms),
            in_flight: self.leases.len(),
            learned: self.learned.clone(),
            misses: self.misses.clone(),
            day_window: self.limits.day_window(),
        }
    }

    /// The part of this budget a restart must not lose; requests in flight count as used now.
    pub fn carried(&mut self, now_ms: i64) -> Carried {
        self.minute.used(now_ms);
        self.day.used(now_ms);
        self.learned.expire(now_ms);
        let mut minute = self.minute.clone();
        let mut day = self.day.clone();
        let in_flight = self.leases.len() as u64;
        minute.add(now_ms + MINUTE_MS, in_flight, self.in_flight_tokens);
        day.add(
            self.limits.day_window().expiry(now_ms),
            in_flight,
            self.in_flight_tokens,
        );
        let cooldown_until_ms = self.cooldown_until_ms.filter(|&u| u > now_ms);
        Carried {
            minute: minute.entries().copied().collect(),
            day: day.entries().copied().collect(),
            cooldown_until_ms,
            cooldown_outage: cooldown_until_ms.is_some() && self.cooldown_outage,
            learned: self.learned.clone(),
            misses: self.misses.clone(),
        }
    }

    /// Resumes from what an earlier run saved: its use still counting, its bench if not over, what it learned.
    pub fn resume(&mut self, saved: Carried, now_ms: i64) {
        for e in saved.minute.iter().filter(|e| e.expires_ms > now_ms) {
            self.minute.add(e.expires_ms, e.requests, e.tokens);
        }
        for e in saved.day.iter().filter(|e| e.expires_ms > now_ms) {
            self.day.add(e.expires_ms, e.requests, e.tokens);
        }
        if let Some(until) = saved.cooldown_until_ms.filter(|&u| u > now_ms) {
            if self.cooldown_until_ms.is_none_or(|u| until > u) {
                self.cooldown_until_ms = Some(until);
                self.cooldown_outage = saved.cooldown_outage;
            }
        }
        self.learned = saved.learned;
        self.learned.expire(now_ms);
        self.refresh_limits();
        self.misses = saved.misses;
    }
}

fn secs_ceil(ms: i64) -> u64 {
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

fn smoothing(limits: Limits, clock: &BudgetClock) -> Option<Smoothing> {
    limits
        .rpm
        .and_then(NonZeroU32::new)
        .map(|rpm| RateLimiter::direct_with_clock(Quota::per_minute(rpm), clock.clone()))
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
        FailureKind::Transient
        | FailureKind::BadRequest
        | FailureKind::InvalidKey
        | FailureKind::Undecodable => None,
    }
}

#[cfg(test)]
mod tests;
