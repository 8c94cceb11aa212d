//! RouterActor: hands handlers an ordered candidate list, each candidate with its budget's limiter, and hears
//! what happened (served turns, failed keys, configuration changes). One runs on each HTTP worker, so a request's
//! plan, lease and settlement never leave its thread; one more on the system arbiter (the home router) reloads
//! the configuration and saves budgets on an interval. All of them route by one `RoutingState` (`state.rs`).
//! It never calls upstreams and never blocks: database reads and writes go through the `Db` actor.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

pub mod queries;
pub mod state;

use super::limiter::{Acquire, Limiter};
use crate::platform::Platform;
use crate::provider_key::{KeyId, KeyStatus};
use crate::providers::FailureKind;
use crate::routing::budget::keywide::JointLease;
use crate::routing::budget::Denial;
use crate::routing::candidates::Unroutable;
use crate::routing::estimate::Cost;
use crate::routing::sticky::SessionKey;
use crate::store::{self, Db};
use crate::timefmt::now_unix_ms;
pub use state::{Ask, BudgetKey, KeyMaterial, PlanCursor, RoutingData, RoutingState};

/// How often the database is checked for changes made outside this process (the CLI).
const RELOAD_POLL: Duration = Duration::from_secs(5);
/// How often budgets that changed are saved; a kill -9 loses at most this much daily use.
const BUDGET_SAVE_EVERY: Duration = Duration::from_secs(2);

/// One (platform, model, key) to try.
#[derive(Clone)]
pub struct Candidate {
    /// Platform.
    pub platform: Platform,
    /// Model id on that platform.
    pub model: Arc<str>,
    /// The key, sealed.
    pub key: Arc<KeyMaterial>,
    /// The budget of this triple, on the planning router's thread.
    pub limiter: Limiter,
    /// The model's context window in tokens, when known.
    pub context: Option<u32>,
    /// The most output tokens the model writes, when the catalog knows it.
    pub max_output: Option<u32>,
}

/// An HTTP worker's own RouterActor, registered as the worker's app data (the app state's router is the home one),
/// and the routing state it plans over, for what a request tells it without needing an answer.
pub struct LocalRouter {
    /// The worker's RouterActor.
    pub addr: Addr<RouterActor>,
    /// The routing state every router shares.
    pub state: Arc<RoutingState>,
}

impl LocalRouter {
    /// Starts a worker's RouterActor on the current arbiter.
    pub fn start(db: Db, state: Arc<RoutingState>) -> LocalRouter {
        LocalRouter {
            addr: RouterActor::worker(db, state.clone()).start(),
            state,
        }
    }

    /// Binds `session` to the model that served its turn. The conversation's next turn is planned over the shared
    /// state, so this is written there at once, not sent to the actor as a message that only forwards it.
    pub fn served(&self, session: SessionKey, platform: Platform, model: Arc<str>) {
        self.state.served(session, platform, model);
    }
}

/// Requests hold the worker's `web::Data<LocalRouter>` (a shared pointer) and call through it, since cloning an
/// actix address allocates.
impl std::ops::Deref for LocalRouter {
    type Target = Addr<RouterActor>;

    fn deref(&self) -> &Addr<RouterActor> {
        &self.addr
    }
}

/// Routes by the shared state; keeps its own thread's limiters.
pub struct RouterActor {
    db: Db,
    state: Arc<RoutingState>,
    /// The limiters this router made (on its own arbiter), for the route table's generation `generation`.
    limiters: HashMap<BudgetKey, Limiter>,
    generation: u64,
    /// Whether this is the home router, which polls for configuration changes and saves budgets.
    home: bool,
}

impl RouterActor {
    /// The home router: besides routing, it reloads configuration changes made outside this process and saves
    /// budgets on an interval.
    pub fn home(db: Db, state: Arc<RoutingState>) -> RouterActor {
        RouterActor {
            home: true,
            ..RouterActor::worker(db, state)
        }
    }

    /// A router for one HTTP worker, started on the worker's arbiter.
    pub fn worker(db: Db, state: Arc<RoutingState>) -> RouterActor {
        RouterActor {
            db,
            state,
            limiters: HashMap::new(),
            generation: 0,
            home: false,
        }
    }

    /// This thread's limiter of (platform, model, key), made on first use over the shared budgets.
    fn limiter(&mut self, platform: Platform, model: &Arc<str>, key: KeyId) -> Limiter {
        let id = (platform, model.clone(), key);
        if let Some(limiter) = self.limiters.get(&id) {
            return limiter.clone();
        }
        let (own, shared) = self.state.budgets_of(platform, model, key);
        let limiter = Limiter::start(own, shared);
        self.limiters.insert(id, limiter.clone());
        limiter
    }

    /// Saves every budget, models' and keys', whose daily use or bench changed since it was last written.
    fn save_budgets(&self) -> impl Future<Output = ()> + 'static {
        let (db, state) = (self.db.clone(), self.state.clone());
        async move {
            let saved =
                db.run(move |conn| state.save_changed(|rows| store::budgets::save(conn, rows)));
            if let Err(e) = saved.await {
                log::warn!("could not save budgets (retrying): {e}");
            }
        }
    }

    /// Reads keys and chain (only if the revision moved, when asked) and applies them.
    fn reload(&self, only_if_changed: bool) -> impl Future<Output = ()> + 'static {
        let known = self.state.revision();
        let (db, state) = (self.db.clone(), self.state.clone());
        async move {
            let read = db.run(move |conn| {
                if only_if_changed && store::settings::revision(conn)? == known {
                    return Ok(None);
                }
                RoutingData::load(conn).map(Some)
            });
            match read.await {
                Ok(Some(data)) => state.apply(data),
                Ok(None) => {}
                Err(e) => log::warn!("could not reload keys and chain: {e}"),
            }
        }
    }
}

impl Actor for RouterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if !self.home {
            return;
        }
        ctx.run_interval(RELOAD_POLL, |router, ctx| {
            ctx.spawn(router.reload(true).into_actor(router));
        });
        ctx.run_interval(BUDGET_SAVE_EVERY, |router, ctx| {
            ctx.spawn(router.save_budgets().into_actor(router));
        });
    }
}

/// Saves every changed budget now; the server sends it at shutdown.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SaveBudgets;

impl Handler<SaveBudgets> for RouterActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: SaveBudgets, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.save_budgets())
    }
}

/// Asks for the candidates of one request, a page at a time, in the order to try them.
#[derive(Message)]
#[rtype(result = "Result<Planned, Unroutable>")]
pub struct Plan {
    /// What is asked for.
    pub ask: Ask,
    /// The conversation, for stickiness.
    pub session: SessionKey,
    /// Where to continue: `None` for the first page, then [`Planned::next`].
    pub cursor: Option<PlanCursor>,
    /// The request's estimated cost: with the first page, the router already asks the first candidate's budget
    /// for a lease, saving the request a second message.
    pub cost: Cost,
}

/// One page of candidates.
pub struct Planned {
    /// Candidates in the order to try them.
    pub candidates: Vec<Candidate>,
    /// Where the next page starts, if there is one.
    pub next: Option<PlanCursor>,
    /// On the first page: the first candidate's answer to [`Acquire`] for the request's tokens. A lease in it
    /// must be settled like any other.
    pub first_lease: Option<Result<JointLease, Denial>>,
}

impl Handler<Plan> for RouterActor {
    type Result = ResponseFuture<Result<Planned, Unroutable>>;

    fn handle(&mut self, msg: Plan, _: &mut Context<Self>) -> Self::Result {
        let planned = self.plan(&msg.ask, msg.session, msg.cursor);
        let first = match (&planned, msg.cursor) {
            (Ok(page), None) => page.candidates.first().map(|c| c.limiter.clone()),
            _ => None,
        };
        let cost = msg.cost;
        Box::pin(async move {
            let mut planned = planned?;
            if let Some(limiter) = first {
                planned.first_lease = limiter.addr().send(Acquire { cost }).await.ok();
            }
            Ok(planned)
        })
    }
}

impl RouterActor {
    /// One page of candidates for a request: the work behind [`Plan`], public so the selection benchmark measures
    /// exactly what a request pays. Needs a running actix System (it may start limiters).
    pub fn plan(
        &mut self,
        ask: &Ask,
        session: SessionKey,
        cursor: Option<PlanCursor>,
    ) -> Result<Planned, Unroutable> {
        let picked = self.state.pick(ask, session, cursor)?;
        if picked.generation != self.generation {
            // The table was rebuilt: budgets of triples that left it are gone, and one that came back has a new one.
            self.limiters.clear();
            self.generation = picked.generation;
        }
        let candidates = picked
            .picks
            .into_iter()
            .map(|pick| Candidate {
                limiter: self.limiter(pick.platform, &pick.model, pick.key.id),
                platform: pick.platform,
                model: pick.model,
                key: pick.key,
                context: pick.context,
                max_output: pick.max_output,
            })
            .collect();
        Ok(Planned {
            candidates,
            next: picked.next,
            first_lease: None,
        })
    }
}

/// Reports a failed attempt that says something about the key itself.
#[derive(Message)]
#[rtype(result = "()")]
pub struct KeyFailed {
    /// The key.
    pub key: KeyId,
    /// What happened.
    pub kind: FailureKind,
    /// The provider's reason, stored as the key's last error.
    pub message: String,
}

impl Handler<KeyFailed> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: KeyFailed, ctx: &mut Context<Self>) {
        let status = match msg.kind {
            FailureKind::InvalidKey => {
                self.state.invalidate(msg.key);
                KeyStatus::Invalid
            }
            FailureKind::RateLimited { .. } | FailureKind::QuotaExhausted { .. } => {
                KeyStatus::RateLimited
            }
            _ => return,
        };
        let (key, message) = (msg.key, msg.message);
        let db = self.db.clone();
        let write = async move {
            db.run(move |conn| {
                store::provider_keys::set_status(conn, key, status, Some(&message), now_unix_ms())
            })
            .await
        };
        ctx.spawn(write.into_actor(self).map(move |result, _, _| {
            if let Err(e) = result {
                log::warn!("could not record status of key {key}: {e}");
            }
        }));
    }
}

/// Re-reads keys and chain now and rebuilds the table on the catalog in force (after an admin change or a
/// catalog swap); answers once routing uses them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reload;

impl Handler<Reload> for RouterActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Reload, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.reload(false))
    }
}

#[cfg(test)]
mod tests {
    use super::super::limiter::HeldLease;
    use super::state::PAGE;
    use super::*;
    use crate::catalog::{Catalog, SharedCatalog};
    use crate::config::Config;
    use crate::providers::Registry;
    use crate::store::chain::ChainRow;
    use crate::store::provider_keys::KeyRow;
    use crate::store::test_db::TempDb;

    fn key(id: i64, status: &str) -> KeyRow {
        KeyRow {
            id: KeyId(id),
            platform: "groq".into(),
            label: format!("key {id}"),
            ciphertext: vec![0; 48],
            nonce: vec![0; 12],
            key_hint: "gsk-…abcd".into(),
            base_url: None,
            models: None,
            status: status.parse().unwrap(),
            last_error: None,
            last_checked_at: None,
            enabled: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn state(keys: Vec<KeyRow>) -> Arc<RoutingState> {
        let config = Config::from_vars(&HashMap::new()).unwrap();
        let catalog = Catalog::parse(
            r#"{"models":[
                {"platform":"groq","model":"llama","context":8192,"limits":{"rpm":30}},
                {"platform":"groq","model":"qwen","context":8192,"limits":{"rpm":30}}
            ]}"#,
        )
        .unwrap();
        let chain = ["llama", "qwen"]
            .iter()
            .enumerate()
            .map(|(position, model)| ChainRow {
                position: position as i64,
                platform: "groq".into(),
                model: (*model).into(),
                enabled: true,
            });
        let data = RoutingData {
            keys,
            aliases: Vec::new(),
            chain: chain.collect(),
            revision: 1,
        };
        Arc::new(RoutingState::new(
            SharedCatalog::new(catalog),
            Arc::new(Registry::new(&config)),
            data,
            Vec::new(),
        ))
    }

    fn router(db: &TempDb, keys: Vec<KeyRow>) -> RouterActor {
        RouterActor::worker(Db::start(db.path.clone(), 1).unwrap(), state(keys))
    }

    #[actix_rt::test]
    async fn pages_walk_every_usable_key_once_then_stop() {
        let db = TempDb::new();
        let mut keys: Vec<KeyRow> = (1..=40).map(|id| key(id, "healthy")).collect();
        keys.push(key(41, "invalid"));
        let mut router = router(&db, keys);
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = router.plan(&Ask::chat("llama"), 7, cursor).unwrap();
            assert!(page.candidates.len() <= PAGE);
            seen.extend(page.candidates.iter().map(|c| c.key.id));
            pages += 1;
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, 3, "40 keys in pages of {PAGE}");
        let first = seen[0];
        assert!(
            seen.iter()
                .zip(seen.iter().skip(1))
                .all(|(a, b)| b.0 == a.0 % 40 + 1),
            "one rotation, in id order: {seen:?}"
        );
        seen.sort();
        assert_eq!(
            seen,
            (1..=40).map(KeyId).collect::<Vec<_>>(),
            "every usable key once, the invalid one never"
        );
        let again = router.plan(&Ask::chat("llama"), 7, None).unwrap();
        assert_ne!(
            again.candidates[0].key.id, first,
            "the next request starts one key later"
        );
    }

    #[actix_rt::test]
    async fn one_key_is_one_page_and_unknown_models_fail() {
        let db = TempDb::new();
        let mut router = router(&db, vec![key(1, "healthy")]);
        let first = router.plan(&Ask::chat("llama"), 1, None).unwrap();
        assert_eq!(first.candidates.len(), 1);
        assert_eq!(first.next, None);
        assert!(matches!(
            router.plan(&Ask::chat("gpt-9"), 1, None),
            Err(Unroutable::UnknownModel)
        ));
    }

    /// One page of `model`'s candidates for `session`, asked of `router` with a small cost.
    async fn planned(
        router: &Addr<RouterActor>,
        model: &str,
        session: SessionKey,
        cursor: Option<PlanCursor>,
    ) -> Planned {
        let plan = Plan {
            ask: Ask::chat(model),
            session,
            cursor,
            cost: Cost {
                prompt: 5,
                output: 5,
            },
        };
        router.send(plan).await.unwrap().unwrap()
    }

    #[actix_rt::test]
    async fn the_first_page_comes_with_the_first_candidates_lease() {
        let db = TempDb::new();
        let state = state((1..=20).map(|id| key(id, "healthy")).collect());
        let router =
            RouterActor::worker(Db::start(db.path.clone(), 1).unwrap(), state.clone()).start();
        let first = planned(&router, "llama", 3, None).await;
        let lease = first.first_lease.unwrap().unwrap();
        let candidate = &first.candidates[0];
        let in_flight = |state: &RoutingState| {
            let (own, _) = state.budgets_of(candidate.platform, &candidate.model, candidate.key.id);
            let in_flight = own.lock().snapshot(now_unix_ms()).in_flight;
            in_flight
        };
        assert_eq!(
            in_flight(&state),
            1,
            "the lease is held by the first candidate's budget"
        );
        HeldLease::new(lease, &candidate.limiter).release();
        assert_eq!(in_flight(&state), 0, "given back");
        let second = planned(&router, "llama", 3, first.next).await;
        assert!(second.first_lease.is_none(), "later pages acquire nothing");
    }

    #[actix_rt::test]
    async fn routers_on_two_workers_share_stickiness_rotation_and_budgets() {
        let db = TempDb::new();
        let state = state((1..=3).map(|id| key(id, "healthy")).collect());
        let workers = [Arbiter::new(), Arbiter::new()];
        let routers: Vec<Addr<RouterActor>> = workers
            .iter()
            .map(|worker| {
                let (db, state) = (Db::start(db.path.clone(), 1).unwrap(), state.clone());
                RouterActor::start_in_arbiter(&worker.handle(), move |_| {
                    RouterActor::worker(db, state)
                })
            })
            .collect();
        let first = planned(&routers[0], "auto", 9, None).await;
        assert_eq!(
            &*first.candidates[0].model, "llama",
            "the chain's first model"
        );
        let served = first
            .candidates
            .iter()
            .find(|c| &*c.model == "qwen")
            .unwrap()
            .clone();
        LocalRouter {
            addr: routers[0].clone(),
            state: state.clone(),
        }
        .served(9, served.platform, served.model.clone());
        let next_turn = planned(&routers[1], "auto", 9, None).await;
        assert_eq!(
            next_turn.candidates[0].model, served.model,
            "the conversation's next turn, planned on the other worker, stays on its model"
        );
        let other = planned(&routers[0], "auto", 10, None).await;
        assert_eq!(&*other.candidates[0].model, "llama", "another conversation");
        assert_ne!(
            other.candidates[0].key.id, first.candidates[0].key.id,
            "one rotation across workers: two requests later, another of the three keys leads"
        );
        let in_flight: usize = state
            .model_snapshots()
            .iter()
            .map(|(_, _, _, snapshot)| snapshot.in_flight)
            .sum();
        assert_eq!(
            in_flight, 3,
            "three first leases, on two threads, in one set of budgets"
        );
        for worker in workers {
            worker.stop();
        }
    }
}
