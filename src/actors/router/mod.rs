//! RouterActor: owns the route table, the keys' encrypted material, key health and sticky sessions, and hands
//! handlers an ordered candidate list. It never calls upstreams and never blocks: database reads and writes go
//! through the `Db` actor in the background.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use futures_util::future::join_all;

pub mod queries;

use super::limiter::{Acquire, RateLimiterActor, ReadCarried, SetLimits, SettleAt, SharedBudget};
use crate::catalog::{ModelKind, SharedCatalog};
use crate::key_admin::CustomModel;
use crate::platform::Platform;
use crate::provider_key::{KeyId, KeyStatus};
use crate::providers::{FailureKind, Registry};
use crate::routing::budget::keywide::JointLease;
use crate::routing::budget::{Carried, Denial};
use crate::routing::candidates::{KeyOffer, RouteTable, Unroutable};
use crate::routing::estimate::Cost;
use crate::routing::needs::Needs;
use crate::routing::sticky::{SessionKey, StickyMap};
use crate::routing::window::Entry;
use crate::store::budgets::{BudgetRow, KEY_WIDE};
use crate::store::{self, Db};
use crate::timefmt::now_unix_ms;

/// How often the database is checked for changes made outside this process (the CLI).
const RELOAD_POLL: Duration = Duration::from_secs(5);
/// How often budgets that changed are saved; a kill -9 loses at most this much daily use.
const BUDGET_SAVE_EVERY: Duration = Duration::from_secs(2);
/// Candidates handed out per [`Plan`]: enough for nearly every request, few enough that planning stays cheap
/// with thousands of keys. A request that gets through them all asks for the next page.
const PAGE: usize = 16;
/// Most candidates one request walks; bounds the work when nearly every key is exhausted.
const MAX_CANDIDATES: usize = 1024;
/// A UTC day in milliseconds: the day saved rows' legacy counts belong to.
const DAY_MS: i64 = 86_400_000;
/// Most conversations remembered for stickiness.
const STICKY_CAPACITY: usize = 100_000;

/// A provider key as routing needs it: still sealed; opened only for the call that uses it.
#[derive(Debug)]
pub struct KeyMaterial {
    /// Database id.
    pub id: KeyId,
    /// Its platform.
    pub platform: Platform,
    /// AES-GCM nonce.
    pub nonce: Vec<u8>,
    /// Sealed key.
    pub ciphertext: Vec<u8>,
    /// Base URL requests with this key go to.
    pub base_url: Arc<str>,
    /// Whether the user has it enabled.
    pub enabled: bool,
}

/// Everything the router is built from, read from the database.
#[derive(Debug, Default)]
pub struct RoutingData {
    /// All provider keys.
    pub keys: Vec<store::provider_keys::KeyRow>,
    /// The fallback chain in order.
    pub chain: Vec<store::chain::ChainRow>,
    /// The user's aliases.
    pub aliases: Vec<store::aliases::AliasRow>,
    /// The configuration revision this was read at.
    pub revision: i64,
}

impl RoutingData {
    /// Reads keys, chain and revision in one go.
    pub fn load(conn: &mut store::Conn) -> Result<RoutingData, store::StoreError> {
        Ok(RoutingData {
            keys: store::provider_keys::list(conn)?,
            chain: store::chain::list(conn)?,
            aliases: store::aliases::list(conn)?,
            revision: store::settings::revision(conn)?,
        })
    }
}

/// One (platform, model, key) to try.
#[derive(Clone)]
pub struct Candidate {
    /// Platform.
    pub platform: Platform,
    /// Model id on that platform.
    pub model: Arc<str>,
    /// The key, sealed.
    pub key: Arc<KeyMaterial>,
    /// The budget of this triple.
    pub limiter: Addr<RateLimiterActor>,
    /// The model's context window in tokens, when the catalog knows it.
    pub context: Option<u32>,
    /// The most output tokens the model writes, when the catalog knows it.
    pub max_output: Option<u32>,
}

/// Which budget: (platform, model, key); a key's shared budget has the model [`KEY_WIDE`].
type BudgetKey = (Platform, Arc<str>, KeyId);

/// Owns routing state.
pub struct RouterActor {
    db: Db,
    catalog: SharedCatalog,
    registry: Arc<Registry>,
    table: RouteTable,
    keys: HashMap<KeyId, Arc<KeyMaterial>>,
    invalid: HashSet<KeyId>,
    limiters: HashMap<BudgetKey, Addr<RateLimiterActor>>,
    /// Each key's budget shared by its models' limiters.
    key_budgets: HashMap<(Platform, KeyId), SharedBudget>,
    custom_contexts: HashMap<(KeyId, Arc<str>), u32>,
    saved: HashMap<BudgetKey, Carried>,
    written: HashMap<BudgetKey, Carried>,
    sticky: StickyMap,
    rotation: usize,
    revision: i64,
}

impl RouterActor {
    /// A router over data already read at startup, resuming the budgets an earlier run saved.
    pub fn new(
        db: Db,
        catalog: SharedCatalog,
        registry: Arc<Registry>,
        data: RoutingData,
        saved: Vec<BudgetRow>,
    ) -> RouterActor {
        let saved: HashMap<BudgetKey, Carried> =
            saved.into_iter().filter_map(carried_from_row).collect();
        let mut router = RouterActor {
            db,
            catalog,
            registry,
            table: RouteTable::default(),
            keys: HashMap::new(),
            invalid: HashSet::new(),
            limiters: HashMap::new(),
            key_budgets: HashMap::new(),
            custom_contexts: HashMap::new(),
            written: saved.clone(),
            saved,
            sticky: StickyMap::new(STICKY_CAPACITY),
            rotation: 0,
            revision: 0,
        };
        router.apply(data);
        router
    }

    /// Rebuilds the route table and key material from freshly read data.
    fn apply(&mut self, data: RoutingData) {
        self.revision = data.revision;
        self.invalid.clear();
        self.keys.clear();
        self.custom_contexts.clear();
        let mut offers = Vec::with_capacity(data.keys.len());
        for row in &data.keys {
            let Ok(platform) = row.platform.parse::<Platform>() else {
                log::warn!(
                    "key {} has unknown platform '{}'; ignored",
                    row.id,
                    row.platform
                );
                continue;
            };
            let base_url = match (&row.base_url, self.registry.base_url(platform)) {
                (Some(own), _) if platform == Platform::Custom => {
                    own.trim_end_matches('/').to_owned()
                }
                (_, Some(url)) => url.to_owned(),
                _ => continue,
            };
            let custom_models: Vec<CustomModel> = match &row.models {
                Some(json) => serde_json::from_str(json).unwrap_or_else(|e| {
                    log::warn!("key {} has unreadable models ({e}); it serves none", row.id);
                    Vec::new()
                }),
                None => Vec::new(),
            };
            for model in &custom_models {
                if let Some(context) = model.context {
                    self.custom_contexts
                        .insert((row.id, Arc::from(model.id.as_str())), context);
                }
            }
            offers.push(KeyOffer {
                id: row.id,
                platform,
                usable: row.enabled && row.status != KeyStatus::Invalid,
                custom_models,
            });
            self.keys.insert(
                row.id,
                Arc::new(KeyMaterial {
                    id: row.id,
                    platform,
                    nonce: row.nonce.clone(),
                    ciphertext: row.ciphertext.clone(),
                    base_url: Arc::from(base_url),
                    enabled: row.enabled,
                }),
            );
        }
        let chain: Vec<(Platform, String, bool)> = data
            .chain
            .iter()
            .filter_map(|c| Some((c.platform.parse().ok()?, c.model.clone(), c.enabled)))
            .collect();
        let registry = self.registry.clone();
        let aliases = data.aliases.into_iter().map(|a| (a.name, a.targets));
        self.table = RouteTable::build(&chain, &self.catalog.current(), &offers, |p| {
            registry.supports(p)
        })
        .with_aliases(aliases);
        let table = &self.table;
        self.limiters.retain(|(platform, model, key), addr| {
            match table.limits(*platform, model, *key) {
                Some(limits) => {
                    addr.do_send(SetLimits(limits));
                    true
                }
                None => false,
            }
        });
        let catalog = self.catalog.current();
        let keys = &self.keys;
        self.key_budgets.retain(|(platform, key), budget| {
            let kept = keys.get(key).is_some_and(|k| k.platform == *platform);
            if kept {
                budget.lock().set_limits(catalog.key_limits(*platform));
            }
            kept
        });
    }

    /// The budget `key` shares across its models, made on first use.
    fn key_budget(&mut self, platform: Platform, key: KeyId) -> SharedBudget {
        let (catalog, saved) = (&self.catalog, &mut self.saved);
        self.key_budgets
            .entry((platform, key))
            .or_insert_with(|| {
                let saved = saved.remove(&(platform, Arc::from(KEY_WIDE), key));
                SharedBudget::new(catalog.current().key_limits(platform), saved)
            })
            .clone()
    }

    fn limiter(
        &mut self,
        platform: Platform,
        model: &Arc<str>,
        key: KeyId,
    ) -> Addr<RateLimiterActor> {
        let id = (platform, model.clone(), key);
        if let Some(addr) = self.limiters.get(&id) {
            return addr.clone();
        }
        let limits = self.table.limits(platform, model, key).unwrap_or_default();
        let shared = self.key_budget(platform, key);
        let saved = &mut self.saved;
        self.limiters
            .entry(id.clone())
            .or_insert_with(|| RateLimiterActor::new(limits, saved.remove(&id), shared).start())
            .clone()
    }

    /// Saves every budget, models' and keys', whose daily use or bench changed since it was last written.
    fn save_budgets(&self) -> impl ActorFuture<Self, Output = ()> + 'static {
        let holders: Vec<(BudgetKey, Addr<RateLimiterActor>)> = self
            .limiters
            .iter()
            .map(|(id, addr)| (id.clone(), addr.clone()))
            .collect();
        let now = now_unix_ms();
        let keys: Vec<(BudgetKey, Carried)> = self
            .key_budgets
            .iter()
            .map(|((platform, key), budget)| {
                let id = (*platform, Arc::from(KEY_WIDE), *key);
                (id, budget.lock().carried(now))
            })
            .collect();
        let read = async move {
            let states = join_all(holders.iter().map(|(_, addr)| addr.send(ReadCarried))).await;
            holders
                .into_iter()
                .zip(states)
                .filter_map(|((id, _), state)| Some((id, state.ok()?)))
                .chain(keys)
                .collect::<Vec<_>>()
        };
        read.into_actor(self).then(|states, router, _| {
            let changed: Vec<(BudgetKey, Carried)> = states
                .into_iter()
                .filter(|(id, state)| router.written.get(id) != Some(state))
                .collect();
            let rows: Vec<BudgetRow> = changed.iter().map(budget_row).collect();
            let db = router.db.clone();
            let write = async move {
                if rows.is_empty() {
                    return Ok(());
                }
                db.run(move |conn| store::budgets::save(conn, &rows)).await
            };
            write
                .into_actor(router)
                .map(|result, router, _| match result {
                    Ok(()) => router.written.extend(changed),
                    Err(e) => log::warn!("could not save budgets (retrying): {e}"),
                })
        })
    }

    /// Reads keys and chain (only if the revision moved, when asked) and applies them.
    fn reload(&self, only_if_changed: bool) -> impl ActorFuture<Self, Output = ()> + 'static {
        let known = self.revision;
        let db = self.db.clone();
        let read = async move {
            db.run(move |conn| {
                if only_if_changed && store::settings::revision(conn)? == known {
                    return Ok(None);
                }
                RoutingData::load(conn).map(Some)
            })
            .await
        };
        read.into_actor(self).map(|result, router, _| match result {
            Ok(Some(data)) => router.apply(data),
            Ok(None) => {}
            Err(e) => log::warn!("could not reload keys and chain: {e}"),
        })
    }
}

impl Actor for RouterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(RELOAD_POLL, |router, ctx| {
            ctx.spawn(router.reload(true));
        });
        ctx.run_interval(BUDGET_SAVE_EVERY, |router, ctx| {
            ctx.spawn(router.save_budgets());
        });
    }
}

/// What an earlier run saved of one budget. Rows from releases before the `detail` column hold only the UTC day's
/// counts: they carry over if they are of today, counting until the day window's next reset.
fn carried_from_row(row: BudgetRow) -> Option<(BudgetKey, Carried)> {
    let platform: Platform = row.platform.parse().ok()?;
    let mut carried: Carried = serde_json::from_str(&row.detail).unwrap_or_else(|e| {
        log::warn!(
            "saved budget of {}/{} key {} is unreadable ({e}); starting it afresh",
            row.platform,
            row.model,
            row.key_id
        );
        Carried::default()
    });
    let now = now_unix_ms();
    if carried.day.is_empty() && row.day == now.div_euclid(DAY_MS) && row.day_requests > 0 {
        carried.day.push(Entry {
            expires_ms: (row.day + 1) * DAY_MS,
            requests: u64::try_from(row.day_requests).ok()?,
            tokens: u64::try_from(row.day_tokens).ok()?,
        });
    }
    carried.cooldown_until_ms = row.cooldown_until_ms;
    carried.cooldown_outage = row.cooldown_outage;
    Some(((platform, Arc::from(row.model), row.key_id), carried))
}

fn budget_row(((platform, model, key), state): &(BudgetKey, Carried)) -> BudgetRow {
    let day_requests: u64 = state.day.iter().map(|e| e.requests).sum();
    let day_tokens: u64 = state.day.iter().map(|e| e.tokens).sum();
    BudgetRow {
        platform: platform.id().to_owned(),
        model: model.to_string(),
        key_id: *key,
        day: now_unix_ms().div_euclid(DAY_MS),
        day_requests: i64::try_from(day_requests).unwrap_or(i64::MAX),
        day_tokens: i64::try_from(day_tokens).unwrap_or(i64::MAX),
        cooldown_until_ms: state.cooldown_until_ms,
        cooldown_outage: state.cooldown_outage,
        detail: serde_json::to_string(state).unwrap_or_else(|_| "{}".to_owned()),
    }
}

/// Saves every changed budget now; the server sends it at shutdown.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SaveBudgets;

impl Handler<SaveBudgets> for RouterActor {
    type Result = ResponseActFuture<Self, ()>;

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
    /// for a lease, saving the request a second round trip to this thread.
    pub cost: Cost,
}

/// What a request asks of the route table.
#[derive(Debug, Clone)]
pub struct Ask {
    /// `auto`, an alias, a model id, or `platform/model`.
    pub model: String,
    /// Chat or embedding: only models of this kind are candidates.
    pub kind: ModelKind,
    /// What the request needs of a model (tools, images, JSON, room for its prompt).
    pub needs: Needs,
    /// Whether a name that is neither an alias nor a model means `auto` (Claude Code's `claude-…` names).
    pub or_auto: bool,
}

impl Ask {
    /// A plain chat request for `model`, needing nothing in particular.
    pub fn chat(model: &str) -> Ask {
        Ask {
            model: model.to_owned(),
            kind: ModelKind::Chat,
            needs: Needs::default(),
            or_auto: false,
        }
    }
}

/// Where a request's candidate list continues: the key rotation it was planned with and how far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanCursor {
    rotation: usize,
    from: usize,
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
                planned.first_lease = limiter.send(Acquire { cost }).await.ok();
            }
            Ok(planned)
        })
    }
}

impl RouterActor {
    /// One page of candidates for a request: the work behind [`Plan`], public so the selection benchmark measures
    /// exactly what a request pays. Needs a running actix System (it may start budget holders).
    ///
    /// Later pages reuse the first page's rotation; a key that turns invalid between pages may shift the list by
    /// one, which at worst repeats or skips one candidate.
    pub fn plan(
        &mut self,
        ask: &Ask,
        session: SessionKey,
        cursor: Option<PlanCursor>,
    ) -> Result<Planned, Unroutable> {
        let offers = match self.table.resolve(&ask.model, ask.kind, &ask.needs) {
            Err(Unroutable::UnknownModel) if ask.or_auto => {
                self.table.resolve("auto", ask.kind, &ask.needs)?
            }
            resolved => resolved?,
        };
        let sticky = self
            .sticky
            .get(session, now_unix_ms())
            .and_then(|(p, m)| self.table.find(p, m));
        let cursor = cursor.unwrap_or_else(|| {
            self.rotation = self.rotation.wrapping_add(1);
            PlanCursor {
                rotation: self.rotation,
                from: 0,
            }
        });
        let end = (cursor.from + PAGE).min(MAX_CANDIDATES);
        let (pairs, more) = {
            let invalid = &self.invalid;
            let mut walk = self
                .table
                .candidates(&offers, sticky, cursor.rotation, |k| invalid.contains(&k))
                .skip(cursor.from);
            let pairs: Vec<(usize, KeyId)> = walk.by_ref().take(end - cursor.from).collect();
            (pairs, walk.next().is_some())
        };
        let next = (more && end < MAX_CANDIDATES).then_some(PlanCursor {
            rotation: cursor.rotation,
            from: end,
        });
        if pairs.is_empty() && cursor.from == 0 {
            return Err(Unroutable::NoKeys);
        }
        let mut candidates = Vec::with_capacity(pairs.len());
        for (offer, key_id) in pairs {
            let (platform, model, context, max_output) = {
                let o = self.table.offer(offer);
                (o.platform, o.model.clone(), o.context, o.max_output)
            };
            let Some(key) = self.keys.get(&key_id).cloned() else {
                continue;
            };
            let limiter = self.limiter(platform, &model, key_id);
            let context =
                context.or_else(|| self.custom_contexts.get(&(key_id, model.clone())).copied());
            candidates.push(Candidate {
                platform,
                model,
                key,
                limiter,
                context,
                max_output,
            });
        }
        Ok(Planned {
            candidates,
            next,
            first_lease: None,
        })
    }
}

/// Reports that a candidate served a turn, binding the conversation to it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Served {
    /// The conversation.
    pub session: SessionKey,
    /// Who served.
    pub platform: Platform,
    /// Which model.
    pub model: Arc<str>,
}

impl Handler<Served> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: Served, _: &mut Context<Self>) {
        self.sticky
            .bind(msg.session, msg.platform, msg.model, now_unix_ms());
    }
}

/// What a worker's outbox (`outbox.rs`) hands over in one [`Later`] batch.
pub enum Later {
    /// A lease's settlement, for its limiter (on this arbiter).
    Settle(SettleAt),
    /// A served turn.
    Served(Served),
}

/// A worker's settlements and served turns, delivered together.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Batch(pub Vec<Later>);

impl Handler<Batch> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: Batch, ctx: &mut Context<Self>) {
        for later in msg.0 {
            match later {
                Later::Settle(at) => at.limiter.do_send(at.settle),
                Later::Served(served) => self.handle(served, ctx),
            }
        }
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
                self.invalid.insert(msg.key);
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
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Reload, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.reload(false))
    }
}

#[cfg(test)]
mod tests {
    use super::super::limiter::{ReadBudget, Settle};
    use super::*;
    use crate::catalog::Catalog;
    use crate::config::Config;
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

    fn router(db: &TempDb, keys: Vec<KeyRow>) -> RouterActor {
        let config = Config::from_vars(&HashMap::new()).unwrap();
        let catalog = Catalog::parse(
            r#"{"models":[{"platform":"groq","model":"llama","context":8192,"limits":{"rpm":30}}]}"#,
        )
        .unwrap();
        RouterActor::new(
            Db::start(db.path.clone(), 1).unwrap(),
            SharedCatalog::new(catalog),
            Arc::new(Registry::new(&config)),
            RoutingData {
                keys,
                aliases: Vec::new(),
                chain: Vec::new(),
                revision: 1,
            },
            Vec::new(),
        )
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

    #[test]
    fn rows_saved_before_the_detail_column_still_carry_todays_use() {
        let today = now_unix_ms().div_euclid(DAY_MS);
        let row = |day, detail: &str| BudgetRow {
            platform: "groq".into(),
            model: "llama".into(),
            key_id: KeyId(1),
            day,
            day_requests: 7,
            day_tokens: 700,
            cooldown_until_ms: Some(now_unix_ms() + 60_000),
            cooldown_outage: true,
            detail: detail.into(),
        };
        let (_, legacy) = carried_from_row(row(today, "{}")).unwrap();
        assert_eq!(
            legacy.day,
            [Entry {
                expires_ms: (today + 1) * DAY_MS,
                requests: 7,
                tokens: 700
            }]
        );
        assert!(legacy.cooldown_outage && legacy.cooldown_until_ms.is_some());
        let (_, stale) = carried_from_row(row(today - 1, "{}")).unwrap();
        assert!(stale.day.is_empty(), "yesterday's counts do not carry");
        let (_, unreadable) = carried_from_row(row(today, "not json")).unwrap();
        assert_eq!(
            unreadable.day.len(),
            1,
            "an unreadable detail falls back to the counts"
        );
        let (_, current) =
            carried_from_row(row(today, r#"{"day":[[9999999999999,2,20]],"minute":[]}"#)).unwrap();
        assert_eq!(
            current.day[0].requests, 2,
            "the detail wins over the counts"
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

    #[actix_rt::test]
    async fn the_first_page_comes_with_the_first_candidates_lease() {
        let db = TempDb::new();
        let keys: Vec<KeyRow> = (1..=20).map(|id| key(id, "healthy")).collect();
        let router = router(&db, keys).start();
        let plan = |cursor| Plan {
            ask: Ask::chat("llama"),
            session: 3,
            cursor,
            cost: Cost {
                prompt: 5,
                output: 5,
            },
        };
        let first = router.send(plan(None)).await.unwrap().unwrap();
        let lease = first.first_lease.unwrap().unwrap();
        let limiter = &first.candidates[0].limiter;
        let budget = limiter.send(ReadBudget).await.unwrap();
        assert_eq!(
            budget.in_flight, 1,
            "the lease is held by the first candidate's budget"
        );
        limiter.do_send(Settle {
            lease,
            outcome: crate::routing::budget::Outcome {
                settlement: crate::routing::budget::Settlement::Failed(
                    crate::providers::Failure::transport(FailureKind::Transient, "reset"),
                ),
                answered_ms: now_unix_ms(),
                news: crate::providers::QuotaNews::default(),
            },
        });
        let second = router.send(plan(first.next)).await.unwrap().unwrap();
        assert!(second.first_lease.is_none(), "later pages acquire nothing");
    }
}
