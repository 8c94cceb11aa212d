//! RateLimiterActor: owns the budget of one (platform, model, key) so that concurrent requests take and settle
//! leases one at a time, and shares its key's budget with the limiters of the key's other models, so a request
//! is admitted by both in one message. The decisions themselves are in `routing::budget` (`keywide` for the pair);
//! this file must not decide anything of its own.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::prelude::*;

use crate::catalog::Limits;
use crate::providers::QuotaNews;
use crate::routing::budget::keywide::{self, JointLease};
use crate::routing::budget::{Budget, Carried, Denial, Outcome, Settlement, Snapshot};
use crate::routing::estimate::Cost;
use crate::timefmt::now_unix_ms;

/// The budget of one (platform, key), shared by the limiters of all the key's models. They all run on the
/// router's arbiter, so the lock is never contended; it is held only for one decision, never across an await.
/// Sharing it saves every request the second round trip a key-wide actor would cost, and decides both budgets
/// at once, so no request is admitted by one and refused by the other in between.
#[derive(Clone, Debug)]
pub struct SharedBudget(Arc<Mutex<Budget>>);

impl SharedBudget {
    /// A key budget with the platform's key-wide limits, resuming from what an earlier run saved, if anything.
    pub fn new(limits: Limits, saved: Option<Carried>) -> SharedBudget {
        SharedBudget(Arc::new(Mutex::new(resumed(limits, saved))))
    }

    /// The budget, to decide with. A panic elsewhere cannot leave it half-updated (every decision completes
    /// under the lock), so a poisoned lock is taken as it is.
    pub fn lock(&self) -> MutexGuard<'_, Budget> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn resumed(limits: Limits, saved: Option<Carried>) -> Budget {
    let mut budget = Budget::new(limits);
    if let Some(saved) = saved {
        budget.resume(saved, now_unix_ms());
    }
    budget
}

/// Holds one model's budget and its key's shared one.
pub struct RateLimiterActor {
    budget: Budget,
    key: SharedBudget,
}

impl RateLimiterActor {
    /// A limiter with fresh windows, resuming from what an earlier run saved, if anything, under `key`'s budget.
    pub fn new(limits: Limits, saved: Option<Carried>, key: SharedBudget) -> RateLimiterActor {
        RateLimiterActor {
            budget: resumed(limits, saved),
            key,
        }
    }
}

impl Actor for RateLimiterActor {
    type Context = Context<Self>;
}

/// Asks for a lease for a request of the estimated cost, from the model's budget and the key's.
#[derive(Message)]
#[rtype(result = "Result<JointLease, Denial>")]
pub struct Acquire {
    /// Estimated prompt tokens and the output reserve.
    pub cost: Cost,
}

impl Handler<Acquire> for RateLimiterActor {
    type Result = MessageResult<Acquire>;

    fn handle(&mut self, msg: Acquire, _: &mut Context<Self>) -> Self::Result {
        let mut key = self.key.lock();
        MessageResult(keywide::acquire(
            &mut self.budget,
            &mut key,
            msg.cost,
            now_unix_ms(),
        ))
    }
}

/// Returns a lease with how its request ended and what the provider said.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Settle {
    /// The lease being returned.
    pub lease: JointLease,
    /// How the attempt ended.
    pub outcome: Outcome,
}

impl Handler<Settle> for RateLimiterActor {
    type Result = ();

    fn handle(&mut self, msg: Settle, _: &mut Context<Self>) {
        let mut key = self.key.lock();
        keywide::settle(
            &mut self.budget,
            &mut key,
            msg.lease,
            msg.outcome,
            now_unix_ms(),
        );
    }
}

/// A settlement on its way to its limiter through a worker's outbox (`outbox.rs`), which hands a worker's
/// settlements to the router's arbiter together instead of one cross-thread message each.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SettleAt {
    /// The limiter the lease came from.
    pub limiter: Addr<RateLimiterActor>,
    /// The settlement.
    pub settle: Settle,
}

/// A lease a request holds: settled by [`HeldLease::settle`], or, if the request is dropped first (its client
/// went away mid-attempt), settled as abandoned, so a lease never stays in flight.
pub struct HeldLease {
    lease: Option<JointLease>,
    limiter: Addr<RateLimiterActor>,
    /// Where the settlement goes on its way to the limiter, if not straight there.
    via: Option<Recipient<SettleAt>>,
}

impl HeldLease {
    /// Holds `lease`, taken from `limiter`; its settlement goes through `via` when given.
    pub fn new(
        lease: JointLease,
        limiter: Addr<RateLimiterActor>,
        via: Option<Recipient<SettleAt>>,
    ) -> HeldLease {
        HeldLease {
            lease: Some(lease),
            limiter,
            via,
        }
    }

    fn send(&self, settle: Settle) {
        match &self.via {
            Some(via) => via.do_send(SettleAt {
                limiter: self.limiter.clone(),
                settle,
            }),
            None => self.limiter.do_send(settle),
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
            self.send(Settle { lease, outcome });
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.send(Settle {
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
        let key = SharedBudget::new(Limits::default(), None);
        RateLimiterActor::new(limits, None, key).start()
    }

    #[actix_rt::test]
    async fn a_dropped_lease_settles_itself() {
        let limiter = limiter(1);
        let lease = limiter.send(Acquire { cost: COST }).await.unwrap().unwrap();
        drop(HeldLease::new(lease, limiter.clone(), None));
        let budget = limiter.send(ReadBudget).await.unwrap();
        assert_eq!(budget.in_flight, 0);
        assert_eq!(budget.rpm.used, 1, "the upstream may have counted it");
        assert_eq!(budget.tpm.used, 20);
    }

    #[actix_rt::test]
    async fn the_limiters_of_one_key_share_its_window() {
        let key = SharedBudget::new(
            Limits {
                rpm: Some(2),
                ..Limits::default()
            },
            None,
        );
        let models: Vec<_> = (0..3)
            .map(|_| RateLimiterActor::new(Limits::default(), None, key.clone()).start())
            .collect();
        let answers = join_all(models.iter().map(|m| m.send(Acquire { cost: COST }))).await;
        let admitted = answers.iter().filter(|a| matches!(a, Ok(Ok(_)))).count();
        assert_eq!(admitted, 2, "three models, one key allowing two");
        assert_eq!(key.lock().snapshot(now_unix_ms()).in_flight, 2);
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
