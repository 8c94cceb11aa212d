//! The failover policy of one request, one rule each: what a budget's refusal or an attempt's failure means for
//! the rest of the request ([`Misses::denied`], [`Misses::failed`]), which candidates a failure rules out
//! ([`Skip`]), and, when the candidates run out, what the client is told ([`Misses::give_up`]). Pure: no actors,
//! no IO, no wire shapes; front doors render the outcome in their own shape.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::budget::{cooldown, Denial};
use crate::failure::{Failure, FailureKind};
use crate::platform::Platform;

/// What to do with a candidate after its attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on to the next candidate.
    Next,
    /// Go on, and give this one a second try once the others are done (a passing fault).
    SecondChance,
}

/// Why the request ended without an answer, for its front door to word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUp {
    /// Nothing was sent: every candidate was out of budget or benched. `after_failures` when only benches
    /// after upstream failures (not rate limits) held them back.
    Cooling {
        /// Seconds until the soonest candidate frees up.
        retry_after_secs: u64,
        /// Whether it was upstream failures, not rate limits, that benched them.
        after_failures: bool,
    },
    /// Nothing was sent: the request needs more tokens than any budget allows at all.
    TooLargeForBudgets,
    /// Every attempt was refused by a rate limit.
    RateLimited {
        /// Seconds until the soonest candidate frees up.
        retry_after_secs: u64,
    },
    /// Every attempt rejected the request itself; the first reason.
    Rejected(String),
    /// Attempts failed upstream in other ways.
    Failed,
}

/// What happened to the candidates that did not answer.
#[derive(Debug, Default)]
pub struct Misses {
    soonest_retry_secs: Option<u64>,
    rate_limited: usize,
    bad_request: Option<String>,
    other: usize,
}

impl Misses {
    /// A candidate's budget refused the request before it was sent.
    pub fn denied(&mut self, denial: &Denial, now_ms: i64) {
        self.retry_in(denial.retry_after_secs(now_ms));
        if !matches!(denial, Denial::Cooling { outage: true, .. }) {
            self.rate_limited += 1;
        }
    }

    /// An attempt failed; answers what to do with its candidate next (rejections are ruled out by [`Skip`]).
    pub fn failed(&mut self, failure: &Failure, second_pass: bool) -> Verdict {
        match failure.kind {
            FailureKind::RateLimited { retry_after }
            | FailureKind::QuotaExhausted { retry_after } => {
                self.rate_limited += 1;
                let cool = cooldown(failure.kind, 1);
                self.retry_in(retry_after.or(cool).map(|d: Duration| d.as_secs().max(1)));
                Verdict::Next
            }
            FailureKind::BadRequest => {
                self.bad_request
                    .get_or_insert_with(|| failure.message.clone());
                Verdict::Next
            }
            FailureKind::Transient if !second_pass => {
                self.other += 1;
                Verdict::SecondChance
            }
            _ => {
                self.other += 1;
                Verdict::Next
            }
        }
    }

    fn retry_in(&mut self, secs: Option<u64>) {
        if let Some(s) = secs {
            self.soonest_retry_secs = Some(self.soonest_retry_secs.map_or(s, |t| t.min(s)));
        }
    }

    /// Why the request ends, given whether any attempt was sent.
    pub fn give_up(&self, attempted: bool) -> GiveUp {
        if !attempted {
            return match self.soonest_retry_secs {
                Some(secs) => GiveUp::Cooling {
                    retry_after_secs: secs,
                    after_failures: self.rate_limited == 0,
                },
                None => GiveUp::TooLargeForBudgets,
            };
        }
        if self.other == 0 && self.bad_request.is_none() {
            return GiveUp::RateLimited {
                retry_after_secs: self.soonest_retry_secs.unwrap_or(60),
            };
        }
        match (&self.bad_request, self.other, self.rate_limited) {
            (Some(reason), 0, 0) => GiveUp::Rejected(reason.clone()),
            _ => GiveUp::Failed,
        }
    }
}

/// Candidates a request's failures rule out: models that rejected the request itself, and, after a context
/// overflow, every model whose window is no larger than the one that overflowed.
#[derive(Debug, Default)]
pub struct Skip {
    rejected_models: HashSet<(Platform, Arc<str>)>,
    context_too_small: Option<u32>,
}

impl Skip {
    /// Takes in a failure of `model` on `platform` (whose context window is `context`, when known).
    pub fn observe(
        &mut self,
        platform: Platform,
        model: &Arc<str>,
        context: Option<u32>,
        failure: &Failure,
    ) {
        let overflow = failure.exceeds_context();
        match failure.kind {
            FailureKind::BadRequest | FailureKind::ModelUnavailable => {
                self.rejected_models.insert((platform, model.clone()));
            }
            _ => return,
        }
        if let (true, Some(window)) = (overflow, context) {
            self.context_too_small = Some(self.context_too_small.map_or(window, |w| w.max(window)));
        }
    }

    /// Whether a candidate is ruled out.
    pub fn excludes(&self, platform: Platform, model: &Arc<str>, context: Option<u32>) -> bool {
        self.rejected_models.contains(&(platform, model.clone()))
            || context
                .zip(self.context_too_small)
                .is_some_and(|(window, too_small)| window <= too_small)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: FailureKind, message: &str) -> Failure {
        Failure {
            kind,
            status: None,
            message: message.to_owned(),
        }
    }

    const T0: i64 = 1_795_000_000_000;

    #[test]
    fn a_passing_fault_gets_a_second_chance_once() {
        let mut m = Misses::default();
        let boom = failure(FailureKind::Transient, "502");
        assert_eq!(m.failed(&boom, false), Verdict::SecondChance);
        assert_eq!(m.failed(&boom, true), Verdict::Next);
        for kind in [
            FailureKind::Timeout,
            FailureKind::Undecodable,
            FailureKind::InvalidKey,
        ] {
            assert_eq!(
                m.failed(&failure(kind, "x"), false),
                Verdict::Next,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn rate_limits_end_in_a_429_with_the_soonest_retry() {
        let mut m = Misses::default();
        let hinted = FailureKind::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        m.failed(&failure(hinted, "slow down"), false);
        m.failed(
            &failure(FailureKind::RateLimited { retry_after: None }, "x"),
            false,
        );
        assert_eq!(
            m.give_up(true),
            GiveUp::RateLimited {
                retry_after_secs: 7
            }
        );
    }

    #[test]
    fn nothing_sent_is_cooling_or_too_large() {
        let mut m = Misses::default();
        assert_eq!(m.give_up(false), GiveUp::TooLargeForBudgets);
        m.denied(
            &Denial::Cooling {
                until_ms: T0 + 3_000,
                outage: true,
            },
            T0,
        );
        assert_eq!(
            m.give_up(false),
            GiveUp::Cooling {
                retry_after_secs: 3,
                after_failures: true
            }
        );
        m.denied(
            &Denial::Cooling {
                until_ms: T0 + 9_000,
                outage: false,
            },
            T0,
        );
        assert_eq!(
            m.give_up(false),
            GiveUp::Cooling {
                retry_after_secs: 3,
                after_failures: false
            },
            "a rate limit among them says rate-limited"
        );
    }

    #[test]
    fn only_rejections_relay_the_first_reason_and_anything_else_lists_the_attempts() {
        let mut m = Misses::default();
        m.failed(&failure(FailureKind::BadRequest, "too long"), false);
        m.failed(&failure(FailureKind::BadRequest, "other words"), false);
        assert_eq!(m.give_up(true), GiveUp::Rejected("too long".into()));
        m.failed(&failure(FailureKind::Transient, "502"), true);
        assert_eq!(m.give_up(true), GiveUp::Failed);
    }

    #[test]
    fn a_rejected_model_and_smaller_windows_are_skipped() {
        let mut skip = Skip::default();
        let (a, b, big): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "big".into());
        let overflow = failure(
            FailureKind::BadRequest,
            "This model's maximum context length is 8192 tokens",
        );
        skip.observe(Platform::Groq, &a, Some(8192), &overflow);
        assert!(skip.excludes(Platform::Groq, &a, Some(8192)));
        assert!(
            skip.excludes(Platform::Cerebras, &b, Some(8192)),
            "no larger window"
        );
        assert!(!skip.excludes(Platform::Cerebras, &big, Some(131_072)));
        assert!(
            !skip.excludes(Platform::Cerebras, &b, None),
            "unknown windows are tried"
        );
        skip.observe(
            Platform::Groq,
            &b,
            None,
            &failure(FailureKind::Transient, "502"),
        );
        assert!(
            !skip.excludes(Platform::Groq, &b, None),
            "a passing fault rules nothing out"
        );
        skip.observe(
            Platform::Groq,
            &b,
            None,
            &failure(FailureKind::ModelUnavailable, "404"),
        );
        assert!(skip.excludes(Platform::Groq, &b, None));
    }
}
