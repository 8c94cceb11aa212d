//! A key's shared budget beside each model's: some providers count per key (OpenRouter's free models share 20
//! requests a minute and 50 a day, NVIDIA 40 a minute), so a request is admitted only if both its model's budget
//! and its key's admit it, and its lease is settled in both.
//!
//! Which budget learns what: the key's budget learns only what the provider said of the key (`QuotaNews::key_wide`)
//! and is benched only by refusals of the key; a model's refusals and failures bench the model alone. Both count
//! the request as the provider did. Pure decisions; no actix, no IO, no locks (the caller owns both budgets).

use super::{Budget, Denial, Lease, Outcome, Settlement};
use crate::failure::FailureKind;
use crate::quota_news::QuotaNews;
use crate::routing::estimate::Cost;

/// Permission to send one request, held in a model's budget and its key's; must be settled.
#[must_use = "a lease must be settled, or its reservation stays held in both budgets"]
#[derive(Debug, PartialEq, Eq)]
pub struct JointLease {
    model: Lease,
    key: Lease,
}

/// Admits a request of `cost` if both the model's budget and the key's do, taking a lease in each; otherwise
/// takes nothing and says why (the key's reason first, since it holds for every model of the key).
pub fn acquire(
    model: &mut Budget,
    key: &mut Budget,
    cost: Cost,
    now_ms: i64,
) -> Result<JointLease, Denial> {
    // Asked first without spending, so a key that is spent never costs a model's smoothing.
    key.check(cost, now_ms)?;
    let model_lease = model.acquire(cost, now_ms)?;
    match key.acquire(cost, now_ms) {
        Ok(key_lease) => Ok(JointLease {
            model: model_lease,
            key: key_lease,
        }),
        Err(denial) => {
            model.settle(model_lease, unused(now_ms), now_ms);
            Err(denial)
        }
    }
}

/// Ends a joint lease: each budget settles with what concerns it (see [`split`]).
pub fn settle(
    model: &mut Budget,
    key: &mut Budget,
    lease: JointLease,
    outcome: Outcome,
    now_ms: i64,
) {
    let (for_model, for_key) = split(outcome);
    model.settle(lease.model, for_model, now_ms);
    key.settle(lease.key, for_key, now_ms);
}

/// The outcome as the model's budget and as the key's budget should take it.
///
/// A served or abandoned request counts in both. A refusal teaches the scope it was about (the key's when the
/// provider said so, else the model's) and is nothing to the other, since the provider did not count it. Any
/// other failure is the model's to learn from; the key counts it as used (the provider may have) without being
/// benched for it.
pub fn split(outcome: Outcome) -> (Outcome, Outcome) {
    let key_wide = outcome.news.key_wide;
    let with = |settlement: Settlement, news: QuotaNews| Outcome {
        settlement,
        answered_ms: outcome.answered_ms,
        news,
    };
    let (model_news, key_news) = if key_wide {
        (QuotaNews::default(), outcome.news.clone())
    } else {
        (outcome.news.clone(), QuotaNews::default())
    };
    match &outcome.settlement {
        Settlement::Failed(failure)
            if matches!(
                failure.kind,
                FailureKind::RateLimited { .. } | FailureKind::QuotaExhausted { .. }
            ) =>
        {
            let refused = with(outcome.settlement.clone(), outcome.news.clone());
            let untouched = with(Settlement::Unused, QuotaNews::default());
            if key_wide {
                (untouched, refused)
            } else {
                (refused, untouched)
            }
        }
        Settlement::Failed(_) => (
            with(outcome.settlement.clone(), model_news),
            with(Settlement::Abandoned, key_news),
        ),
        settlement => (
            with(settlement.clone(), model_news),
            with(settlement.clone(), key_news),
        ),
    }
}

fn unused(now_ms: i64) -> Outcome {
    Outcome {
        settlement: Settlement::Unused,
        answered_ms: now_ms,
        news: QuotaNews::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Window;
    use crate::quota_news::WindowReport;
    use std::time::Duration;

    use crate::routing::budget::tests::{failed, limits, served};

    const T0: i64 = 1_795_000_000_000;
    const COST: Cost = Cost {
        prompt: 10,
        output: 10,
    };

    fn budget(rpm: Option<u32>, rpd: Option<u32>) -> Budget {
        Budget::new(limits(rpm, rpd, None, None))
    }

    #[test]
    fn a_request_needs_both_windows_and_counts_in_both() {
        let mut key = budget(Some(3), None);
        let (mut a, mut b) = (budget(Some(2), None), budget(Some(2), None));
        let first = acquire(&mut a, &mut key, COST, T0).unwrap();
        let _second = acquire(&mut a, &mut key, COST, T0).unwrap();
        assert!(
            matches!(
                acquire(&mut a, &mut key, COST, T0),
                Err(Denial::Exhausted {
                    window: Window::Rpm,
                    ..
                })
            ),
            "the model's window is full"
        );
        let _third = acquire(&mut b, &mut key, COST, T0).unwrap();
        let denied = acquire(&mut b, &mut key, COST, T0);
        assert!(
            matches!(
                denied,
                Err(Denial::Exhausted {
                    window: Window::Rpm,
                    ..
                })
            ),
            "the key's window is full though model b has room: {denied:?}"
        );
        assert_eq!(
            b.snapshot(T0).in_flight,
            1,
            "the refused request holds nothing in b"
        );
        assert_eq!(b.snapshot(T0).rpm.used, 1);
        settle(&mut a, &mut key, first, served(20, T0 + 10), T0 + 10);
        assert_eq!(
            (
                key.snapshot(T0 + 10).rpm.used,
                key.snapshot(T0 + 10).in_flight
            ),
            (3, 2)
        );
    }

    #[test]
    fn a_spent_key_day_turns_away_every_model_of_the_key() {
        let mut key = budget(Some(20), Some(2));
        let mut models: Vec<Budget> = (0..3).map(|_| budget(Some(20), Some(200))).collect();
        for (i, model) in models.iter_mut().take(2).enumerate() {
            let at = T0 + i as i64;
            let lease = acquire(model, &mut key, COST, at).unwrap();
            settle(model, &mut key, lease, served(20, at), at);
        }
        for model in &mut models {
            let denied = acquire(model, &mut key, COST, T0 + 100);
            assert!(
                matches!(
                    denied,
                    Err(Denial::Exhausted {
                        window: Window::Rpd,
                        ..
                    })
                ),
                "{denied:?}"
            );
        }
        assert_eq!(models[2].snapshot(T0 + 100).rpm.used, 0);
        assert_eq!(key.snapshot(T0 + 100).rpd.used, 2);
    }

    #[test]
    fn a_key_wide_refusal_teaches_the_key_not_the_model() {
        let mut key = budget(None, None);
        let (mut a, mut b) = (budget(Some(20), Some(200)), budget(Some(20), Some(200)));
        let lease = acquire(&mut a, &mut key, COST, T0).unwrap();
        let mut news = QuotaNews {
            exceeded: vec![Window::Rpd],
            key_wide: true,
            ..QuotaNews::default()
        };
        news.add(
            Window::Rpd,
            WindowReport {
                limit: Some(50),
                remaining: Some(0),
                reset: Some(Duration::from_secs(3600)),
            },
        );
        let kind = FailureKind::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
        };
        settle(&mut a, &mut key, lease, failed(kind, T0, news), T0);
        let learned = key.snapshot(T0);
        assert_eq!(
            learned.rpd.limit,
            Some(50),
            "the key learned its daily limit"
        );
        assert_eq!(learned.misses.count, 1);
        let model = a.snapshot(T0);
        assert!(
            model.learned.iter().next().is_none(),
            "the model learned nothing"
        );
        assert_eq!(model.cooldown_until_ms, None, "the model is not benched");
        assert!(
            acquire(&mut b, &mut key, COST, T0 + 1).is_err(),
            "no model of the key is tried"
        );
        assert!(acquire(&mut a, &mut key, COST, T0 + 3_599_000).is_err());
    }

    #[test]
    fn a_models_own_refusal_or_timeout_leaves_the_key_open() {
        let mut key = budget(Some(20), Some(50));
        let (mut a, mut b) = (budget(Some(20), None), budget(Some(20), None));
        let lease = acquire(&mut a, &mut key, COST, T0).unwrap();
        let kind = FailureKind::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        settle(
            &mut a,
            &mut key,
            lease,
            failed(kind, T0, QuotaNews::default()),
            T0,
        );
        assert!(
            a.snapshot(T0).cooldown_until_ms.is_some(),
            "the model is benched"
        );
        let snapshot = key.snapshot(T0);
        assert_eq!(
            (snapshot.rpd.used, snapshot.misses.count),
            (0, 0),
            "uncounted, unblamed"
        );
        let lease = acquire(&mut b, &mut key, COST, T0).unwrap();
        let timeout = failed(FailureKind::Timeout, T0 + 5, QuotaNews::default());
        settle(&mut b, &mut key, lease, timeout, T0 + 5);
        assert!(b.snapshot(T0 + 5).cooldown_until_ms.is_some());
        assert_eq!(key.snapshot(T0 + 5).cooldown_until_ms, None);
        assert_eq!(
            key.snapshot(T0 + 5).rpd.used,
            1,
            "the provider may have counted it"
        );
    }
}
