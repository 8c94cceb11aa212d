//! HealthProbeActor: probes keys in the background (spread over HEALTH_CHECK_INTERVAL_SECS, interleaved across
//! providers, jittered), when a key is added, and on demand; records each key's status and last error, and tells
//! the router when a key becomes usable or unusable.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::http::header::HeaderValue;
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;

use super::router::queries::{GetKey, ListKeys};
use super::router::{KeyMaterial, Reload, RouterActor};
use crate::actors::provider::{Probe, ProviderPool, Timeouts};
use crate::crypto::{key_aad, Cipher};
use crate::hops;
use crate::provider_key::{KeyId, KeyStatus};
use crate::providers::{Registry, Target};
use crate::routing::probes::{schedule, status_after};
use crate::store::{provider_keys, Db};
use crate::timefmt::now_unix_ms;

/// What probes need to reach upstreams and record results.
#[derive(Clone)]
pub struct ProbeDeps {
    /// The database.
    pub db: Db,
    /// Routing state (key material, reloads).
    pub router: Addr<RouterActor>,
    /// Upstream callers.
    pub providers: ProviderPool,
    /// Adapters.
    pub registry: Arc<Registry>,
    /// Opens sealed keys.
    pub cipher: Arc<Cipher>,
    /// This instance's hop list, sent with every probe so a key that leads back here is caught.
    pub hops: HeaderValue,
    /// Time limits of one probe.
    pub timeouts: Timeouts,
}

/// Probes keys.
pub struct HealthProbeActor {
    deps: ProbeDeps,
    interval: Option<Duration>,
}

impl HealthProbeActor {
    /// A prober; `interval` `None` disables background and on-add probes (on-demand checks still work).
    pub fn new(deps: ProbeDeps, interval: Option<Duration>) -> HealthProbeActor {
        HealthProbeActor { deps, interval }
    }

    fn start_round(&mut self, ctx: &mut Context<Self>, interval: Duration) {
        let router = self.deps.router.clone();
        let plan = async move { router.send(ListKeys).await.unwrap_or_default() };
        ctx.spawn(plan.into_actor(self).map(move |keys, actor, ctx| {
            let pairs: Vec<(KeyId, _)> = keys.iter().map(|k| (k.id, k.platform)).collect();
            for (id, at) in schedule(&pairs, interval, OsRng.next_u64()) {
                let deps = actor.deps.clone();
                ctx.run_later(at, move |_, ctx| {
                    ctx.spawn(fut::wrap_future::<_, Self>(async move {
                        probe_logged(&deps, id).await
                    }));
                });
            }
        }));
    }
}

impl Actor for HealthProbeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(interval) = self.interval {
            self.start_round(ctx, interval);
            ctx.run_interval(interval, move |actor, ctx| actor.start_round(ctx, interval));
        }
    }
}

/// Probes one key in the background, logging what cannot be recorded.
async fn probe_logged(deps: &ProbeDeps, id: KeyId) {
    if let Err(e) = probe_and_record(deps, id).await {
        log::warn!("probing key {id}: {e}");
    }
}

/// Probes one key and records the result; returns its new status.
async fn probe_and_record(deps: &ProbeDeps, id: KeyId) -> Result<KeyStatus, String> {
    let key = deps
        .router
        .send(GetKey(id))
        .await
        .map_err(|e| e.to_string())?;
    let (status, error) = match key {
        Some(key) => probe(deps, &key).await,
        None => (
            KeyStatus::Error,
            Some("this key's platform is not supported by this version".to_owned()),
        ),
    };
    let now = now_unix_ms();
    let before = deps
        .db
        .run(move |conn| {
            let before = provider_keys::get(conn, id)?.map(|row| row.status);
            if before.is_some() {
                provider_keys::set_status(conn, id, status, error.as_deref(), now)?;
            }
            Ok(before)
        })
        .await
        .map_err(|e| e.to_string())?;
    match before {
        None => Err(format!("no key with id {id}")),
        Some(before) => {
            if (before == KeyStatus::Invalid) != (status == KeyStatus::Invalid) {
                deps.router.send(Reload).await.map_err(|e| e.to_string())?;
            }
            Ok(status)
        }
    }
}

async fn probe(deps: &ProbeDeps, key: &KeyMaterial) -> (KeyStatus, Option<String>) {
    let Some(provider) = deps.registry.adapter(key.platform).cloned() else {
        return (
            KeyStatus::Error,
            Some(format!("no adapter for platform {}", key.platform)),
        );
    };
    let Ok(secret) = deps.cipher.open(
        &key.nonce,
        &key.ciphertext,
        &key_aad(key.id, key.platform.id()),
    ) else {
        return (
            KeyStatus::Error,
            Some("the stored key could not be decrypted".to_owned()),
        );
    };
    let mut request = provider.probe_request(&Target {
        base_url: &key.base_url,
        model: "",
        secret: &secret,
    });
    request.headers.push((hops::HEADER, deps.hops.clone()));
    drop(secret);
    let probe = Probe {
        provider,
        request,
        timeouts: deps.timeouts,
    };
    match deps.providers.pick().send(probe).await {
        Ok(Ok(())) => (status_after(Ok(())), None),
        Ok(Err(failure)) => (status_after(Err(failure.kind)), Some(failure.to_string())),
        Err(e) => (
            KeyStatus::Error,
            Some(format!("provider actor unavailable: {e}")),
        ),
    }
}

/// Probes one key now and answers with its new status (`POST /api/keys/{id}/check`).
#[derive(Message)]
#[rtype(result = "Result<KeyStatus, String>")]
pub struct Check(pub KeyId);

impl Handler<Check> for HealthProbeActor {
    type Result = ResponseFuture<Result<KeyStatus, String>>;

    fn handle(&mut self, msg: Check, _: &mut Context<Self>) -> Self::Result {
        let deps = self.deps.clone();
        Box::pin(async move { probe_and_record(&deps, msg.0).await })
    }
}

/// A key was just added: probe it soon, unless background probes are disabled.
#[derive(Message)]
#[rtype(result = "()")]
pub struct KeyAdded(pub KeyId);

impl Handler<KeyAdded> for HealthProbeActor {
    type Result = ();

    fn handle(&mut self, msg: KeyAdded, ctx: &mut Context<Self>) {
        if self.interval.is_none() {
            return;
        }
        let deps = self.deps.clone();
        ctx.spawn(fut::wrap_future::<_, Self>(async move {
            probe_logged(&deps, msg.0).await
        }));
    }
}
