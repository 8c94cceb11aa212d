//! RateLimiterActor: owns the budget of one (platform, model, key) so that concurrent requests take and settle
//! leases one at a time. The decisions themselves are in `routing::budget`.

use actix::prelude::*;

use crate::catalog::Limits;
use crate::routing::budget::{Budget, Carried, Denial, Lease, Outcome, Snapshot};
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

    #[actix_rt::test]
    async fn fifty_concurrent_requests_never_overshoot_a_30_rpm_key() {
        let limits = Limits {
            rpm: Some(30),
            ..Limits::default()
        };
        let limiter = RateLimiterActor::new(limits, None).start();
        let cost = Cost {
            prompt: 10,
            output: 10,
        };
        let answers = join_all((0..50).map(|_| limiter.send(Acquire { cost }))).await;
        let admitted = answers.iter().filter(|a| matches!(a, Ok(Ok(_)))).count();
        assert_eq!(admitted, 30);
        let budget = limiter.send(ReadBudget).await.unwrap();
        assert_eq!((budget.in_flight, budget.rpm.used), (30, 30));
    }
}
