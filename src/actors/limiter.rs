//! RateLimiterActor: owns the budget of one (platform, model, key) so that concurrent requests take and settle
//! leases one at a time. The decisions themselves are in `routing::budget`.

use actix::prelude::*;

use crate::catalog::Limits;
use crate::providers::QuotaNews;
use crate::routing::budget::{Budget, Carried, Denial, Lease, Outcome, Settlement, Snapshot};
use crate::routing::estimate::Cost;
use crate::timefmt::now_unix_ms;

/// Holds one budget.
pub struct RateLimiterActor {
    budget: Budget,
}

impl RateLimiterActor {
    /// A limiter with fresh windows, resuming from what an earlier run saved, if anything.
    pub fn new(limits: Limits, saved: Option<Carried>) -> RateLimiterActor {
        let mut budget = Budget::new(limits);
        if let Some(saved) = saved {
            budget.resume(saved, now_unix_ms());
        }
        RateLimiterActor { budget }
    }
}

impl Actor for RateLimiterActor {
    type Context = Context<Self>;
}

/// Asks for a lease for a request of the estimated cost.
#[derive(Message)]
#[rtype(result = "Result<Lease, Denial>")]
pub struct Acquire {
    /// Estimated prompt tokens and the output reserve.
    pub cost: Cost,
}

impl Handler<Acquire> for RateLimiterActor {
    type Result = MessageResult<Acquire>;

    fn handle(&mut self, msg: Acquire, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.budget.acquire(msg.cost, now_unix_ms()))
    }
}

/// Returns a lease with how its request ended and what the provider said.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Settle {
    /// The lease being returned.
    pub lease: Lease,
    /// How the attempt ended.
    pub outcome: Outcome,
}

impl Handler<Settle> for RateLimiterActor {
    type Result = ();

    fn handle(&mut self, msg: Settle, _: &mut Context<Self>) {
        self.budget.settle(msg.lease, msg.outcome, now_unix_ms());
    }
}

/// A lease a request holds: settled by [`HeldLease::settle`], or, if the request is dropped first (its client
/// went away mid-attempt), settled as abandoned, so a lease never stays in flight.
pub struct HeldLease {
    lease: Option<Lease>,
    limiter: Addr<RateLimiterActor>,
}

impl HeldLease {
    /// Holds `lease`, taken from `limiter`.
    pub fn new(lease: Lease, limiter: Addr<RateLimiterActor>) -> HeldLease {
        HeldLease {
            lease: Some(lease),
            limiter,
        }
    }

    /// Gives the lease back unused: nothing was sent with it.
    pub fn release(self) {
        self.settle(Outcome {
            settlement: Settlement::Unused,
            answered_ms: now_unix_ms(),
            news: QuotaNews::default(),
        });
    }

    /// Returns the lease with how its request ended.
    pub fn settle(mut self, outcome: Outcome) {
        if let Some(lease) = self.lease.take() {
            self.limiter.do_send(Settle { lease, outcome });
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.limiter.do_send(Settle {
                lease,
                outcome: Outcome {
                    settlement: Settlement::Abandoned,
                    answered_ms: now_unix_ms(),
                    news: QuotaNews::default(),
                },
            });
        }
    }
}

/// Updates the limits after a catalog or key change.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetLimits(pub Limits);

impl Handler<SetLimits> for RateLimiterActor {
    type Result = ();

    fn handle(&mut self, msg: SetLimits, _: &mut Context<Self>) {
        self.budget.set_limits(msg.0);
    }
}

/// Reads the current use of every window.
#[derive(Message)]
#[rtype(result = "Snapshot")]
pub struct ReadBudget;

impl Handler<ReadBudget> for RateLimiterActor {
    type Result = MessageResult<ReadBudget>;

    fn handle(&mut self, _: ReadBudget, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.budget.snapshot(now_unix_ms()))
    }
}

/// Reads what a restart must not lose, for saving.
#[derive(Message)]
#[rtype(result = "Carried")]
pub struct ReadCarried;

impl Handler<ReadCarried> for RateLimiterActor {
    type Result = MessageResult<ReadCarried>;

    fn handle(&mut self, _: ReadCarried, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.budget.carried(now_unix_ms()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::join_all;

    const COST: Cost = Cost {
        prompt: 10,
        output: 10,
    };

    fn limiter(rpm: u32) -> Addr<RateLimiterActor> {
        let limits = Limits {
            rpm: Some(rpm),
            ..Limits::default()
        };
        RateLimiterActor::new(limits, None).start()
    }

    #[actix_rt::test]
    async fn a_dropped_lease_settles_itself() {
        let limiter = limiter(1);
        let lease = limiter.send(Acquire { cost: COST }).await.unwrap().unwrap();
        drop(HeldLease::new(lease, limiter.clone()));
        let budget = limiter.send(ReadBudget).await.unwrap();
        assert_eq!(budget.in_flight, 0);
        assert_eq!(budget.rpm.used, 1, "the upstream may have counted it");
        assert_eq!(budget.tpm.used, 20);
    }

    #[actix_rt::test]
    async fn fifty_concurrent_requests_never_overshoot_a_30_rpm_key() {
        let limiter = limiter(30);
        let answers = join_all((0..50).map(|_| limiter.send(Acquire { cost: COST }))).await;
        let admitted = answers.iter().filter(|a| matches!(a, Ok(Ok(_)))).count();
        assert_eq!(admitted, 30);
        let budget = limiter.send(ReadBudget).await.unwrap();
        assert_eq!((budget.in_flight, budget.rpm.used), (30, 30));
    }
}
