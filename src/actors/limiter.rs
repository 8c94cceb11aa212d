//! RateLimiterActor: one per HTTP worker and (platform, model, key), so a request asks for its lease with a
//! message on its own thread. It decides by the triple's budget and its key's, both shared with the other
//! workers' limiters (`SharedBudget`), so a request is admitted by both at once and no worker can overshoot what
//! another took; a lease (`HeldLease`) settles straight into the same budgets. The decisions themselves are in
//! `routing::budget` (`keywide` for the pair); this file must not decide anything of its own.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::prelude::*;

use crate::catalog::Limits;
use crate::providers::QuotaNews;
use crate::routing::budget::keywide::{self, JointLease};
use crate::routing::budget::{Budget, Carried, Denial, Outcome, Settlement};
use crate::routing::estimate::Cost;
use crate::timefmt::now_unix_ms;

/// One budget behind a lock: a (platform, model, key)'s own, or the one a key shares across its models. Every
/// worker's limiter of that triple holds the same one, so requests on any thread see one budget; the lock is held
/// for one decision, never across an await, and a limiter takes its model's before its key's.
#[derive(Clone, Debug)]
pub struct SharedBudget(Arc<Mutex<Budget>>);

impl SharedBudget {
    /// A budget with `limits`, resuming from what an earlier run saved, if anything.
    pub fn new(limits: Limits, saved: Option<Carried>) -> SharedBudget {
        let mut budget = Budget::new(limits);
        if let Some(saved) = saved {
            budget.resume(saved, now_unix_ms());
        }
        SharedBudget(Arc::new(Mutex::new(budget)))
    }

    /// The budget, to decide with. A panic elsewhere cannot leave it half-updated (every decision completes
    /// under the lock), so a poisoned lock is taken as it is.
    pub fn lock(&self) -> MutexGuard<'_, Budget> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One worker's limiter of one (platform, model, key): the model's budget and its key's, shared with the other
/// workers' limiters of the same triple.
pub struct RateLimiterActor {
    budget: SharedBudget,
    key: SharedBudget,
}

impl RateLimiterActor {
    /// A limiter deciding by `budget` (the model's) and `key` (its key's).
    pub fn new(budget: SharedBudget, key: SharedBudget) -> RateLimiterActor {
        RateLimiterActor { budget, key }
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
        let mut budget = self.budget.lock();
        let mut key = self.key.lock();
        MessageResult(keywide::acquire(
            &mut budget,
            &mut key,
            msg.cost,
            now_unix_ms(),
        ))
    }
}

/// A worker's limiter of one (platform, model, key): its actor, which grants leases, and the budgets the actor
/// decides by, which the leases it grants settle into. Cloned into every candidate, so it is one shared pointer
/// (cloning an actix address allocates).
#[derive(Clone)]
pub struct Limiter(Arc<LimiterParts>);

struct LimiterParts {
    addr: Addr<RateLimiterActor>,
    budget: SharedBudget,
    key: SharedBudget,
}

impl Limiter {
    /// Starts a limiter on the current arbiter, deciding by `budget` (the model's) and `key` (its key's).
    pub fn start(budget: SharedBudget, key: SharedBudget) -> Limiter {
        Limiter(Arc::new(LimiterParts {
            addr: RateLimiterActor::new(budget.clone(), key.clone()).start(),
            budget,
            key,
        }))
    }

    /// The actor that grants leases ([`Acquire`]).
    pub fn addr(&self) -> &Addr<RateLimiterActor> {
        &self.0.addr
    }
}

/// A lease a request holds: settled by [`HeldLease::settle`], or, if the request is dropped first (its client
/// went away mid-attempt), settled as abandoned, so a lease never stays in flight. It settles straight into the
/// shared budgets, not by a message: by the time the client has its answer the budget counts it, so the next
/// request, on any worker, already sees the cooldown a 429 started.
pub struct HeldLease {
    lease: Option<JointLease>,
    budget: SharedBudget,
    key: SharedBudget,
}

impl HeldLease {
    /// Holds `lease`, granted by `limiter`.
    pub fn new(lease: JointLease, limiter: &Limiter) -> HeldLease {
        HeldLease {
            lease: Some(lease),
            budget: limiter.0.budget.clone(),
            key: limiter.0.key.clone(),
        }
    }

    fn settle_now(&mut self, outcome: Outcome) {
        if let Some(lease) = self.lease.take() {
            let mut budget = self.budget.lock();
            let mut key = self.key.lock();
            keywide::settle(&mut budget, &mut key, lease, outcome, now_unix_ms());
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
        self.settle_now(outcome);
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if self.lease.is_some() {
            self.settle_now(Outcome {
                settlement: Settlement::Abandoned,
                answered_ms: now_unix_ms(),
                news: QuotaNews::default(),
            });
        }
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

    fn budget(rpm: Option<u32>) -> SharedBudget {
        let limits = Limits {
            rpm,
            ..Limits::default()
        };
        SharedBudget::new(limits, None)
    }

    #[actix_rt::test]
    async fn a_dropped_lease_settles_itself() {
        let own = budget(Some(1));
        let limiter = Limiter::start(own.clone(), budget(None));
        let lease = limiter
            .addr()
            .send(Acquire { cost: COST })
            .await
            .unwrap()
            .unwrap();
        drop(HeldLease::new(lease, &limiter));
        let budget = own.lock().snapshot(now_unix_ms());
        assert_eq!(budget.in_flight, 0);
        assert_eq!(budget.rpm.used, 1, "the upstream may have counted it");
        assert_eq!(budget.tpm.used, 20);
    }

    #[actix_rt::test]
    async fn the_limiters_of_one_key_share_its_window() {
        let key = budget(Some(2));
        let models: Vec<_> = (0..3)
            .map(|_| RateLimiterActor::new(budget(None), key.clone()).start())
            .collect();
        let answers = join_all(models.iter().map(|m| m.send(Acquire { cost: COST }))).await;
        let admitted = answers.iter().filter(|a| matches!(a, Ok(Ok(_)))).count();
        assert_eq!(admitted, 2, "three models, one key allowing two");
        assert_eq!(key.lock().snapshot(now_unix_ms()).in_flight, 2);
    }

    #[actix_rt::test]
    async fn workers_on_two_threads_never_overshoot_a_30_rpm_key_together() {
        let (own, key) = (budget(Some(30)), budget(None));
        let workers = [Arbiter::new(), Arbiter::new()];
        let limiters: Vec<Addr<RateLimiterActor>> = workers
            .iter()
            .map(|worker| {
                let (own, key) = (own.clone(), key.clone());
                RateLimiterActor::start_in_arbiter(&worker.handle(), move |_| {
                    RateLimiterActor::new(own, key)
                })
            })
            .collect();
        let asks = limiters
            .iter()
            .flat_map(|limiter| (0..25).map(|_| limiter.send(Acquire { cost: COST })));
        let answers = join_all(asks).await;
        let admitted = answers.iter().filter(|a| matches!(a, Ok(Ok(_)))).count();
        assert_eq!(
            admitted, 30,
            "fifty asks on two threads, one budget of thirty"
        );
        let budget = own.lock().snapshot(now_unix_ms());
        assert_eq!((budget.in_flight, budget.rpm.used), (30, 30));
        for worker in workers {
            worker.stop();
        }
    }
}
