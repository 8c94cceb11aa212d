//! Tests of budgets: windows, leases, settlements, benches, learned limits and what survives a restart.

use super::*;
use crate::quota_news::WindowReport;

const T0: i64 = 1_795_000_000_000;

pub(super) fn limits(
    rpm: Option<u32>,
    rpd: Option<u32>,
    tpm: Option<u32>,
    tpd: Option<u32>,
) -> Limits {
    Limits {
        rpm,
        rpd,
        tpm,
        tpd,
        day_window: None,
    }
}

pub(super) fn cost(tokens: u64) -> Cost {
    Cost {
        prompt: 0,
        output: tokens,
    }
}

pub(super) fn served(tokens: u64, answered_ms: i64) -> Outcome {
    Outcome {
        settlement: Settlement::Served {
            tokens: Some(tokens),
            reported_prompt: None,
        },
        answered_ms,
        news: QuotaNews::default(),
    }
}

pub(super) fn failed(kind: FailureKind, answered_ms: i64, news: QuotaNews) -> Outcome {
    Outcome {
        settlement: Settlement::Failed(Failure {
            kind,
            status: Some(429),
            message: "Rate limit reached".into(),
        }),
        answered_ms,
        news,
    }
}

fn refused(answered_ms: i64) -> Outcome {
    let kind = FailureKind::RateLimited { retry_after: None };
    failed(kind, answered_ms, QuotaNews::default())
}

fn exhausted(window: Window) -> impl Fn(&Result<Lease, Denial>) -> bool {
    move |r| matches!(r, Err(Denial::Exhausted { window: w, .. }) if *w == window)
}

#[test]
fn rpm_admits_exactly_the_limit_in_flight_or_not() {
    let mut b = Budget::new(limits(Some(2), None, None, None));
    let a = b.acquire(cost(10), T0).unwrap();
    let c = b.acquire(cost(10), T0 + 1000).unwrap();
    assert!(exhausted(Window::Rpm)(&b.acquire(cost(10), T0 + 2000)));
    b.settle(a, served(5, T0 + 2000), T0 + 2000);
    b.settle(c, served(5, T0 + 2000), T0 + 2000);
    assert_eq!(
        b.acquire(cost(10), T0 + 3000),
        Err(Denial::Exhausted {
            window: Window::Rpm,
            retry_after_secs: 59
        }),
        "settled use counts for a minute from when the upstream answered"
    );
    assert!(b.acquire(cost(10), T0 + 62_000).is_ok());
}

#[test]
fn use_counts_from_the_answer_never_from_the_send() {
    let mut b = Budget::new(limits(Some(1), None, None, None));
    let l = b.acquire(cost(1), T0).unwrap();
    b.settle(l, served(1, T0 + 1500), T0 + 1600);
    assert!(exhausted(Window::Rpm)(&b.acquire(cost(1), T0 + 61_499)));
    assert!(b.acquire(cost(1), T0 + 61_500).is_ok());
}

#[test]
fn concurrent_leases_never_overshoot_tokens() {
    let mut b = Budget::new(limits(None, None, Some(100), None));
    let l1 = b.acquire(cost(60), T0).unwrap();
    assert!(exhausted(Window::Tpm)(&b.acquire(cost(60), T0)));
    b.settle(l1, served(20, T0), T0);
    let l2 = b.acquire(cost(60), T0).unwrap();
    assert_eq!(b.snapshot(T0).tpm.used, 80);
    b.settle(
        l2,
        failed(FailureKind::Transient, T0, QuotaNews::default()),
        T0,
    );
    let s = b.snapshot(T0);
    assert_eq!(s.tpm.used, 20, "a failed attempt returns its reservation");
    assert_eq!(
        s.rpm.used, 2,
        "but counts as a request the provider may have seen"
    );
}

#[test]
fn an_unused_lease_counts_nothing_and_a_refusal_of_the_request_benches_nothing() {
    let mut b = Budget::new(limits(Some(1), None, Some(100), None));
    let unused = b.acquire(cost(60), T0).unwrap();
    b.settle(
        unused,
        Outcome {
            settlement: Settlement::Unused,
            answered_ms: T0,
            news: QuotaNews::default(),
        },
        T0,
    );
    let s = b.snapshot(T0);
    assert_eq!((s.in_flight, s.rpm.used, s.tpm.used), (0, 0, 0));
    let mut b = Budget::new(limits(None, None, None, None));
    for kind in [
        FailureKind::Undecodable,
        FailureKind::BadRequest,
        FailureKind::Undecodable,
    ] {
        let l = b.acquire(cost(1), T0).unwrap();
        b.settle(l, failed(kind, T0, QuotaNews::default()), T0);
    }
    let l = b.acquire(cost(1), T0).unwrap();
    b.settle(
        l,
        failed(FailureKind::Transient, T0, QuotaNews::default()),
        T0,
    );
    assert!(
        b.acquire(cost(1), T0).is_ok(),
        "one transient failure after failures that were not the route's is a first failure"
    );
}

#[test]
fn a_lease_never_settled_is_taken_as_used_and_released() {
    let mut b = Budget::new(limits(Some(2), None, None, None));
    let _lost = b.acquire(cost(10), T0).unwrap();
    let later = T0 + LEASE_TTL_MS;
    let s = b.snapshot(later - 1);
    assert_eq!((s.in_flight, s.rpm.used), (1, 1));
    let l = b.acquire(cost(10), later).unwrap();
    let s = b.snapshot(later);
    assert_eq!(s.in_flight, 1, "only the new one is in flight");
    assert_eq!(
        s.rpm.used, 2,
        "the lost one counts for a minute from when it ran out"
    );
    b.settle(l, served(10, later), later);
    assert!(b.acquire(cost(10), later + MINUTE_MS).is_ok());
}

#[test]
fn oversized_request_never_fits() {
    let mut b = Budget::new(limits(None, None, Some(100), None));
    assert_eq!(b.acquire(cost(101), T0), Err(Denial::TooLarge));
}

#[test]
fn day_windows_reset_as_the_catalog_says() {
    let day_ms = 86_400_000;
    let mut utc = Budget::new(Limits {
        day_window: Some(DayWindow::MidnightUtc),
        ..limits(None, Some(1), None, None)
    });
    let l = utc.acquire(cost(1), T0).unwrap();
    utc.settle(l, served(1, T0), T0);
    let midnight = (T0 / day_ms + 1) * day_ms;
    assert_eq!(
        utc.acquire(cost(1), T0),
        Err(Denial::Exhausted {
            window: Window::Rpd,
            retry_after_secs: u64::try_from((midnight - T0) / 1000).unwrap()
        })
    );
    assert!(utc.acquire(cost(1), midnight).is_ok());

    let mut rolling = Budget::new(limits(None, Some(1), None, None));
    let l = rolling.acquire(cost(1), T0).unwrap();
    rolling.settle(l, served(1, T0), T0);
    assert!(exhausted(Window::Rpd)(&rolling.acquire(cost(1), midnight)));
    assert!(rolling.acquire(cost(1), T0 + day_ms).is_ok());
}

#[test]
fn rate_limit_cools_for_the_hint_and_transient_only_when_repeated() {
    let mut b = Budget::new(Limits::default());
    let l = b.acquire(cost(1), T0).unwrap();
    let kind = FailureKind::RateLimited {
        retry_after: Some(Duration::from_secs(30)),
    };
    b.settle(l, failed(kind, T0, QuotaNews::default()), T0);
    let cooling = Denial::Cooling {
        until_ms: T0 + 30_000,
        outage: false,
    };
    assert_eq!(b.acquire(cost(1), T0 + 29_000), Err(cooling));
    assert_eq!(cooling.retry_after_secs(T0 + 29_000), Some(1));
    assert_eq!(b.snapshot(T0).misses.count, 1);
    let l = b.acquire(cost(1), T0 + 30_000).unwrap();
    b.settle(l, served(1, T0 + 30_000), T0 + 30_000);

    let blip = || failed(FailureKind::Transient, T0 + 31_000, QuotaNews::default());
    let l = b.acquire(cost(1), T0 + 31_000).unwrap();
    b.settle(l, blip(), T0 + 31_000);
    let l = b
        .acquire(cost(1), T0 + 31_000)
        .expect("one blip does not bench");
    b.settle(l, blip(), T0 + 31_000);
    assert!(matches!(
        b.acquire(cost(1), T0 + 31_000),
        Err(Denial::Cooling { outage: true, .. })
    ));
}

#[test]
fn stated_limits_tighten_the_catalog() {
    let mut b = Budget::new(limits(Some(30), Some(1000), Some(12_000), None));
    let l = b.acquire(cost(500), T0).unwrap();
    let mut news = QuotaNews::default();
    let stated = |limit, remaining| WindowReport {
        limit: Some(limit),
        remaining: Some(remaining),
        reset: None,
    };
    news.add(Window::Tpm, stated(8_000, 7_500));
    news.add(Window::Rpd, stated(14_400, 14_399));
    b.settle(
        l,
        Outcome {
            news,
            ..served(500, T0)
        },
        T0,
    );
    let s = b.snapshot(T0);
    assert_eq!(s.tpm.limit, Some(8_000));
    assert_eq!(s.rpd.limit, Some(1000), "a looser statement never loosens");
    assert_eq!(s.misses.count, 0);
}

#[test]
fn remaining_quota_reveals_use_the_budget_did_not_see() {
    let mut b = Budget::new(limits(None, Some(100), None, None));
    let l = b.acquire(cost(1), T0).unwrap();
    let mut news = QuotaNews::default();
    news.add(
        Window::Rpd,
        WindowReport {
            limit: None,
            remaining: Some(40),
            reset: Some(Duration::from_secs(3600)),
        },
    );
    b.settle(
        l,
        Outcome {
            news,
            ..served(1, T0)
        },
        T0,
    );
    assert_eq!(b.snapshot(T0).rpd.used, 60, "someone else used 59 today");
    assert_eq!(
        b.snapshot(T0 + 3_600_000).rpd.used,
        1,
        "until the provider's reset"
    );
}

#[test]
fn an_unpredicted_refusal_is_a_miss_that_teaches_the_limit() {
    let mut b = Budget::new(limits(Some(5), Some(2400), None, None));
    let sent: Vec<Lease> = (0..5).map(|_| b.acquire(cost(1), T0).unwrap()).collect();
    let mut sent = sent.into_iter();
    for _ in 0..3 {
        b.settle(sent.next().unwrap(), served(1, T0 + 50), T0 + 50);
    }
    let news = QuotaNews {
        exceeded: vec![Window::Rpm, Window::Rpd],
        ..QuotaNews::default()
    };
    let kind = FailureKind::RateLimited { retry_after: None };
    b.settle(
        sent.next().unwrap(),
        failed(kind, T0 + 60, news.clone()),
        T0 + 60,
    );
    b.settle(sent.next().unwrap(), failed(kind, T0 + 60, news), T0 + 60);
    let s = b.snapshot(T0 + 60);
    assert_eq!(s.misses.count, 2);
    assert_eq!(s.misses.window, Some(Window::Rpm), "the fuller window");
    assert_eq!(s.rpm.limit, Some(3), "three were served before the refusal");
    assert_eq!(s.rpm.used, 3, "refused requests are not counted");
    assert_eq!(
        s.cooldown_until_ms, None,
        "the window itself holds the key back"
    );
    assert!(exhausted(Window::Rpm)(&b.acquire(cost(1), T0 + 60_049)));
    assert!(b.acquire(cost(1), T0 + 60_050).is_ok());
}

#[test]
fn the_providers_figures_rule_windows_out() {
    let mut b = Budget::new(limits(Some(5), Some(2400), None, None));
    let first = b.acquire(cost(1), T0).unwrap();
    b.settle(first, served(1, T0), T0);
    let l = b.acquire(cost(1), T0).unwrap();
    let mut news = QuotaNews {
        exceeded: vec![Window::Rpm, Window::Rpd],
        ..QuotaNews::default()
    };
    news.add(
        Window::Rpd,
        WindowReport {
            limit: Some(2400),
            remaining: Some(2399),
            reset: None,
        },
    );
    let kind = FailureKind::RateLimited { retry_after: None };
    b.settle(l, failed(kind, T0, news), T0);
    let s = b.snapshot(T0);
    assert_eq!(s.misses.window, Some(Window::Rpm), "the day still has room");
    assert_eq!(s.rpm.limit, Some(1));
    assert_eq!(s.rpd.limit, Some(2400));
}

#[test]
fn a_refusal_that_reveals_nothing_benches_for_a_backoff() {
    let mut b = Budget::new(limits(Some(5), None, None, None));
    let l = b.acquire(cost(1), T0).unwrap();
    b.settle(l, refused(T0), T0);
    let s = b.snapshot(T0);
    assert_eq!(s.misses.count, 1);
    assert_eq!(
        s.rpm.limit,
        Some(5),
        "nothing was sent before it: nothing learned"
    );
    assert_eq!(s.cooldown_until_ms, Some(T0 + 30_000));
}

#[test]
fn learned_limits_run_out_so_a_raised_limit_gets_used() {
    let mut b = Budget::new(limits(Some(10), None, None, None));
    let l = b.acquire(cost(1), T0).unwrap();
    let mut news = QuotaNews::default();
    news.add(
        Window::Rpm,
        WindowReport {
            limit: Some(4),
            ..WindowReport::default()
        },
    );
    b.settle(
        l,
        Outcome {
            news,
            ..served(1, T0)
        },
        T0,
    );
    assert_eq!(b.snapshot(T0).rpm.limit, Some(4));
    let later = T0 + super::super::learned::LEARNED_FOR_MS;
    assert_eq!(b.snapshot(later).rpm.limit, Some(10));
}

#[test]
fn a_resumed_budget_keeps_its_windows_bench_and_lessons() {
    let limits = limits(Some(3), None, None, Some(1000));
    let mut before = Budget::new(limits);
    let l = before.acquire(cost(100), T0).unwrap();
    before.settle(l, served(150, T0), T0);
    let in_flight = before.acquire(cost(100), T0).unwrap();
    let l = before.acquire(cost(1), T0).unwrap();
    let kind = FailureKind::RateLimited {
        retry_after: Some(Duration::from_secs(10)),
    };
    let news = QuotaNews {
        exceeded: vec![Window::Rpm],
        ..QuotaNews::default()
    };
    before.settle(l, failed(kind, T0, news), T0);
    let saved = before.carried(T0 + 1000);
    let json = serde_json::to_string(&saved).unwrap();
    let mut restored: Carried = serde_json::from_str(&json).unwrap();
    restored.cooldown_until_ms = saved.cooldown_until_ms;
    restored.cooldown_outage = saved.cooldown_outage;
    assert_eq!(restored, saved);

    let mut after = Budget::new(limits);
    after.resume(restored, T0 + 2000);
    assert_eq!(
        after.acquire(cost(1), T0 + 2000),
        Err(Denial::Cooling {
            until_ms: T0 + 10_000,
            outage: false
        })
    );
    let s = after.snapshot(T0 + 20_000);
    assert_eq!(
        s.rpm,
        WindowUse {
            used: 2,
            limit: Some(2)
        },
        "the request in flight at the save counts"
    );
    assert_eq!(s.tpd.used, 250);
    assert_eq!(s.misses.count, 1);
    assert!(
        exhausted(Window::Rpm)(&after.acquire(cost(1), T0 + 20_000)),
        "the minute spent before the restart stays spent"
    );
    assert!(after.acquire(cost(1), T0 + 61_000).is_ok());
    drop(in_flight);
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
    let l = b.acquire(cost(1), T0).unwrap();
    b.set_limits(limits(Some(1), None, None, None));
    assert!(b.acquire(cost(1), T0).is_err());
    b.settle(l, served(1, T0), T0);
    assert_eq!(
        b.snapshot(T0).rpm,
        WindowUse {
            used: 1,
            limit: Some(1)
        }
    );
}
