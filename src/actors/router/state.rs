//! RoutingState: what every RouterActor routes by, shared by the one on each HTTP worker and the one on the
//! system arbiter: the route table and sealed keys, sticky conversations, the key rotation, and every budget.
//! Sharing it is what lets each worker route on its own thread. Each lock is held for one decision and never
//! across an await; when two are taken, `routes` comes before `budgets`. It must not talk to the database or to
//! any actor: the RouterActors do that and hand it data.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::actors::limiter::SharedBudget;
use crate::catalog::{ModelKind, SharedCatalog};
use crate::key_admin::CustomModel;
use crate::platform::Platform;
use crate::provider_key::{KeyId, KeyStatus};
use crate::providers::Registry;
use crate::routing::budget::{Carried, Snapshot};
use crate::routing::candidates::{KeyOffer, RouteTable, Unroutable};
use crate::routing::needs::Needs;
use crate::routing::sticky::{SessionKey, StickyMap};
use crate::routing::window::Entry;
use crate::store;
use crate::store::budgets::{BudgetRow, KEY_WIDE};
use crate::timefmt::now_unix_ms;

/// Candidates handed out per plan: enough for nearly every request, few enough that planning stays cheap with
/// thousands of keys. A request that gets through them all asks for the next page.
pub const PAGE: usize = 16;
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

/// Everything the route table is built from, read from the database.
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

/// What a request asks of the route table.
#[derive(Debug, Clone)]
pub struct Ask {
    /// `auto`, an alias, a model id, or `platform/model`.
    pub model: Arc<str>,
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
            model: model.into(),
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

/// Which budget: (platform, model, key); a key's shared budget has the model [`KEY_WIDE`].
pub type BudgetKey = (Platform, Arc<str>, KeyId);

/// One (platform, model, key) picked for a request, before a worker gives it its limiter.
pub struct Pick {
    /// Platform.
    pub platform: Platform,
    /// Model id on that platform.
    pub model: Arc<str>,
    /// The key, sealed.
    pub key: Arc<KeyMaterial>,
    /// The model's context window in tokens, when known.
    pub context: Option<u32>,
    /// The most output tokens the model writes, when the catalog knows it.
    pub max_output: Option<u32>,
}

/// One page of picks.
pub struct Picked {
    /// In the order to try them.
    pub picks: Vec<Pick>,
    /// Where the next page starts, if there is one.
    pub next: Option<PlanCursor>,
    /// The route table's generation they were picked from (it moves on every rebuild).
    pub generation: u64,
}

/// The route table and what it is built from.
struct Routes {
    table: RouteTable,
    keys: HashMap<KeyId, Arc<KeyMaterial>>,
    invalid: HashSet<KeyId>,
    custom_contexts: HashMap<(KeyId, Arc<str>), u32>,
    revision: i64,
    generation: u64,
}

/// Every budget, and what was last saved of each.
struct Budgets {
    models: HashMap<BudgetKey, SharedBudget>,
    keys: HashMap<(Platform, KeyId), SharedBudget>,
    saved: HashMap<BudgetKey, Carried>,
    written: HashMap<BudgetKey, Carried>,
}

/// Routing state shared by all RouterActors.
pub struct RoutingState {
    catalog: SharedCatalog,
    registry: Arc<Registry>,
    routes: RwLock<Routes>,
    budgets: Mutex<Budgets>,
    sticky: Mutex<StickyMap>,
    rotation: AtomicUsize,
    /// Held by the save in progress: saves run one at a time.
    saving: Mutex<()>,
}

/// Takes a lock whatever a panic elsewhere left: every change under these locks completes before it is released.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RoutingState {
    /// The state over data read at startup, resuming the budgets an earlier run saved.
    pub fn new(
        catalog: SharedCatalog,
        registry: Arc<Registry>,
        data: RoutingData,
        saved: Vec<BudgetRow>,
    ) -> RoutingState {
        let saved: HashMap<BudgetKey, Carried> =
            saved.into_iter().filter_map(carried_from_row).collect();
        let state = RoutingState {
            catalog,
            registry,
            routes: RwLock::new(Routes {
                table: RouteTable::default(),
                keys: HashMap::new(),
                invalid: HashSet::new(),
                custom_contexts: HashMap::new(),
                revision: 0,
                generation: 0,
            }),
            budgets: Mutex::new(Budgets {
                models: HashMap::new(),
                keys: HashMap::new(),
                written: saved.clone(),
                saved,
            }),
            sticky: Mutex::new(StickyMap::new(STICKY_CAPACITY)),
            rotation: AtomicUsize::new(0),
            saving: Mutex::new(()),
        };
        state.apply(data);
        state
    }

    fn routes(&self) -> RwLockReadGuard<'_, Routes> {
        self.routes.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn routes_mut(&self) -> RwLockWriteGuard<'_, Routes> {
        self.routes.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration revision the table was built at.
    pub fn revision(&self) -> i64 {
        self.routes().revision
    }

    /// Rebuilds the route table and key material from freshly read data, and updates every budget's limits
    /// (dropping those of triples and keys that are gone). The table is built before the lock is taken, so
    /// requests keep routing by the old one meanwhile.
    pub fn apply(&self, data: RoutingData) {
        let mut next = Routes {
            table: RouteTable::default(),
            keys: HashMap::new(),
            invalid: HashSet::new(),
            custom_contexts: HashMap::new(),
            revision: data.revision,
            generation: 0,
        };
        let routes = &mut next;
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
                    routes
                        .custom_contexts
                        .insert((row.id, Arc::from(model.id.as_str())), context);
                }
            }
            offers.push(KeyOffer {
                id: row.id,
                platform,
                usable: row.enabled && row.status != KeyStatus::Invalid,
                custom_models,
            });
            routes.keys.insert(
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
        let catalog = self.catalog.current();
        next.table = RouteTable::build(&chain, &catalog, &offers, |p| registry.supports(p))
            .with_aliases(aliases);
        let mut routes = self.routes_mut();
        next.generation = routes.generation + 1;
        *routes = next;
        let mut budgets = locked(&self.budgets);
        let table = &routes.table;
        budgets.models.retain(|(platform, model, key), budget| {
            match table.limits(*platform, model, *key) {
                Some(limits) => {
                    budget.lock().set_limits(limits);
                    true
                }
                None => false,
            }
        });
        let keys = &routes.keys;
        budgets.keys.retain(|(platform, key), budget| {
            let kept = keys.get(key).is_some_and(|k| k.platform == *platform);
            if kept {
                budget.lock().set_limits(catalog.key_limits(*platform));
            }
            kept
        });
    }

    /// One page of picks for a request, in the order to try them.
    ///
    /// Later pages reuse the first page's rotation; a key that turns invalid between pages may shift the list by
    /// one, which at worst repeats or skips one candidate.
    pub fn pick(
        &self,
        ask: &Ask,
        session: SessionKey,
        cursor: Option<PlanCursor>,
    ) -> Result<Picked, Unroutable> {
        let routes = self.routes();
        let table = &routes.table;
        let offers = match table.resolve(&ask.model, ask.kind, &ask.needs) {
            Err(Unroutable::UnknownModel) if ask.or_auto => {
                table.resolve("auto", ask.kind, &ask.needs)?
            }
            resolved => resolved?,
        };
        let sticky = locked(&self.sticky)
            .get(session, now_unix_ms())
            .and_then(|(p, m)| table.find(p, m));
        let cursor = cursor.unwrap_or_else(|| PlanCursor {
            rotation: self
                .rotation
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_add(1),
            from: 0,
        });
        let end = (cursor.from + PAGE).min(MAX_CANDIDATES);
        let invalid = &routes.invalid;
        let mut walk = table
            .candidates(&offers, sticky, cursor.rotation, |k| invalid.contains(&k))
            .skip(cursor.from);
        let pairs: Vec<(usize, KeyId)> = walk.by_ref().take(end - cursor.from).collect();
        let more = walk.next().is_some();
        let next = (more && end < MAX_CANDIDATES).then_some(PlanCursor {
            rotation: cursor.rotation,
            from: end,
        });
        if pairs.is_empty() && cursor.from == 0 {
            return Err(Unroutable::NoKeys);
        }
        let picks = pairs
            .into_iter()
            .filter_map(|(offer, key_id)| {
                let offer = table.offer(offer);
                let key = routes.keys.get(&key_id)?.clone();
                let context = offer.context.or_else(|| {
                    routes
                        .custom_contexts
                        .get(&(key_id, offer.model.clone()))
                        .copied()
                });
                Some(Pick {
                    platform: offer.platform,
                    model: offer.model.clone(),
                    key,
                    context,
                    max_output: offer.max_output,
                })
            })
            .collect();
        Ok(Picked {
            picks,
            next,
            generation: routes.generation,
        })
    }

    /// The budgets of (platform, model, key): the model's own and the one its key shares across its models, each
    /// made on first use (resuming what an earlier run saved).
    pub fn budgets_of(
        &self,
        platform: Platform,
        model: &Arc<str>,
        key: KeyId,
    ) -> (SharedBudget, SharedBudget) {
        let limits = self.routes().table.limits(platform, model, key);
        let mut budgets = locked(&self.budgets);
        let id = (platform, model.clone(), key);
        let own = match budgets.models.get(&id) {
            Some(own) => own.clone(),
            None => {
                let saved = budgets.saved.remove(&id);
                let own = SharedBudget::new(limits.unwrap_or_default(), saved);
                budgets.models.insert(id, own.clone());
                own
            }
        };
        (own, self.key_budget(&mut budgets, platform, key))
    }

    fn key_budget(&self, budgets: &mut Budgets, platform: Platform, key: KeyId) -> SharedBudget {
        if let Some(shared) = budgets.keys.get(&(platform, key)) {
            return shared.clone();
        }
        let saved = budgets.saved.remove(&(platform, Arc::from(KEY_WIDE), key));
        let shared = SharedBudget::new(self.catalog.current().key_limits(platform), saved);
        budgets.keys.insert((platform, key), shared.clone());
        shared
    }

    /// Binds a conversation to the candidate that served its turn.
    pub fn served(&self, session: SessionKey, platform: Platform, model: Arc<str>) {
        locked(&self.sticky).bind(session, platform, model, now_unix_ms());
    }

    /// Marks a key invalid until the table is next rebuilt from the database.
    pub fn invalidate(&self, key: KeyId) {
        self.routes_mut().invalid.insert(key);
    }

    /// The current use of every (platform, model, key) budget, sorted, making those not used yet.
    pub fn model_snapshots(&self) -> Vec<(Platform, Arc<str>, KeyId, Snapshot)> {
        let mut triples: Vec<(Platform, Arc<str>, KeyId)> = self
            .routes()
            .table
            .triples()
            .map(|(p, m, k)| (p, m.clone(), k))
            .collect();
        triples.sort();
        let now = now_unix_ms();
        triples
            .into_iter()
            .map(|(p, m, k)| {
                let snapshot = self.budgets_of(p, &m, k).0.lock().snapshot(now);
                (p, m, k, snapshot)
            })
            .collect()
    }

    /// The current use of each key's shared budget, for keys whose platform or provider set a key-wide limit.
    pub fn key_snapshots(&self) -> Vec<(Platform, KeyId, Snapshot)> {
        let mut pairs: Vec<(Platform, KeyId)> = self
            .routes()
            .table
            .triples()
            .map(|(p, _, k)| (p, k))
            .collect();
        pairs.sort();
        pairs.dedup();
        let now = now_unix_ms();
        let mut budgets = locked(&self.budgets);
        pairs
            .into_iter()
            .filter_map(|(platform, key)| {
                let snapshot = self
                    .key_budget(&mut budgets, platform, key)
                    .lock()
                    .snapshot(now);
                let limited = [snapshot.rpm, snapshot.rpd, snapshot.tpm, snapshot.tpd]
                    .iter()
                    .any(|w| w.limit.is_some());
                limited.then_some((platform, key, snapshot))
            })
            .collect()
    }

    /// Reads the route table, for questions that change nothing.
    pub fn with_table<T>(&self, read: impl FnOnce(&RouteTable) -> T) -> T {
        read(&self.routes().table)
    }

    /// The enabled keys the gateway can talk to, by id, for background probes.
    pub fn probe_keys(&self) -> Vec<Arc<KeyMaterial>> {
        let mut keys: Vec<Arc<KeyMaterial>> = self
            .routes()
            .keys
            .values()
            .filter(|k| k.enabled && self.registry.supports(k.platform))
            .cloned()
            .collect();
        keys.sort_by_key(|k| k.id);
        keys
    }

    /// One key's material.
    pub fn key(&self, id: KeyId) -> Option<Arc<KeyMaterial>> {
        self.routes().keys.get(&id).cloned()
    }

    /// Hands `write` the rows of every budget, models' and keys', whose daily use or bench changed since it was
    /// last written. Saves run one at a time and each reads the budgets only once it runs, so a slow save can
    /// never land after a later one with older rows (the save at shutdown then writes what the requests used).
    pub fn save_changed<E>(
        &self,
        write: impl FnOnce(&[BudgetRow]) -> Result<(), E>,
    ) -> Result<(), E> {
        let _one_at_a_time = locked(&self.saving);
        let now = now_unix_ms();
        let changed: Vec<(BudgetKey, Carried)> = {
            let budgets = locked(&self.budgets);
            let keys = budgets
                .keys
                .iter()
                .map(|((platform, key), budget)| ((*platform, Arc::from(KEY_WIDE), *key), budget));
            budgets
                .models
                .iter()
                .map(|(id, budget)| (id.clone(), budget))
                .chain(keys)
                .map(|(id, budget)| (id, budget.lock().carried(now)))
                .filter(|(id, state)| budgets.written.get(id) != Some(state))
                .collect()
        };
        if changed.is_empty() {
            return Ok(());
        }
        let rows: Vec<BudgetRow> = changed.iter().map(budget_row).collect();
        write(&rows)?;
        locked(&self.budgets).written.extend(changed);
        Ok(())
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

/// The row one budget is saved as.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
