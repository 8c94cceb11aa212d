//! The RouterActor's read-only questions: budgets per (platform, model, key) and per key, the models `/v1/models`
//! lists, whether aliases are sound, and the keys probes need. They read the routing state and change nothing
//! that routing decides by (a budget may be made on first read).

use std::sync::Arc;

use actix::prelude::*;

use super::{KeyMaterial, RouterActor};
use crate::catalog::{Capabilities, ModelKind};
use crate::platform::Platform;
use crate::provider_key::KeyId;
use crate::routing::budget::Snapshot;

/// Reads the current use of every (platform, model, key) budget, sorted, making those not used yet.
#[derive(Message)]
#[rtype(result = "Vec<(Platform, Arc<str>, KeyId, Snapshot)>")]
pub struct ListBudgets;

impl Handler<ListBudgets> for RouterActor {
    type Result = MessageResult<ListBudgets>;

    fn handle(&mut self, _: ListBudgets, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.model_snapshots())
    }
}

/// Reads the budget each key shares across its models, for keys whose platform or provider set a key-wide limit.
#[derive(Message)]
#[rtype(result = "Vec<(Platform, KeyId, Snapshot)>")]
pub struct ListKeyBudgets;

impl Handler<ListKeyBudgets> for RouterActor {
    type Result = MessageResult<ListKeyBudgets>;

    fn handle(&mut self, _: ListKeyBudgets, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.key_snapshots())
    }
}

/// Lists model ids that have at least one usable key, as the platform that serves each first offers it, and the
/// names that stand for several of them.
#[derive(Message)]
#[rtype(result = "Listing")]
pub struct ListModels;

/// What `/v1/models` lists.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Model ids some usable key serves.
    pub models: Vec<Servable>,
    /// Provider-neutral ids and aliases, with the `platform/model` ids each reaches.
    pub shared: Vec<(String, Vec<String>)>,
}

/// Checks aliases (name, targets) against the route table: the answer is the first problem, in words.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct CheckAliases(pub Vec<(String, Vec<String>)>);

impl Handler<CheckAliases> for RouterActor {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: CheckAliases, _: &mut Context<Self>) -> Self::Result {
        self.state.with_table(|table| {
            msg.0
                .iter()
                .try_for_each(|(name, targets)| table.check_alias(name, targets))
        })
    }
}

/// A model id some usable key serves.
#[derive(Debug, Clone)]
pub struct Servable {
    /// The model id.
    pub model: Arc<str>,
    /// The platform serving it first.
    pub platform: Platform,
    /// Chat or embedding.
    pub kind: ModelKind,
    /// Its context window, where known.
    pub context: Option<u32>,
    /// What it can do.
    pub capabilities: Capabilities,
}

impl Handler<ListModels> for RouterActor {
    type Result = MessageResult<ListModels>;

    fn handle(&mut self, _: ListModels, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.with_table(|table| {
            let listed = table.servable_models().into_iter().map(|offer| Servable {
                model: offer.model.clone(),
                platform: offer.platform,
                kind: offer.kind,
                context: offer.context,
                capabilities: offer.capabilities,
            });
            Listing {
                models: listed.collect(),
                shared: table.shared_names(),
            }
        }))
    }
}

/// Lists the enabled keys the gateway can talk to, for background probes.
#[derive(Message)]
#[rtype(result = "Vec<Arc<KeyMaterial>>")]
pub struct ListKeys;

impl Handler<ListKeys> for RouterActor {
    type Result = MessageResult<ListKeys>;

    fn handle(&mut self, _: ListKeys, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.probe_keys())
    }
}

/// Fetches one key's material, for probes.
#[derive(Message)]
#[rtype(result = "Option<Arc<KeyMaterial>>")]
pub struct GetKey(pub KeyId);

impl Handler<GetKey> for RouterActor {
    type Result = Option<Arc<KeyMaterial>>;

    fn handle(&mut self, msg: GetKey, _: &mut Context<Self>) -> Self::Result {
        self.state.key(msg.0)
    }
}
