//! One upstream attempt, the same for a request's answer and for the continuation of a broken stream: open the
//! candidate's key, build its platform's request, send it through this worker's ProviderActor and wait for the
//! first event; and, when an attempt fails, the one place that tells the router about the key. It decides
//! nothing about failover: callers do.

use actix::Addr;
use actix_web::http::header::HeaderValue;
use actix_web::web;
use tokio::sync::mpsc;

use super::Work;
use crate::actors::limiter::HeldLease;
use crate::actors::provider::{
    event_channel, Dispatch, Expect, LocalProvider, Timeouts, UpstreamEvent,
};
use crate::actors::router::{KeyFailed, LocalRouter};
use crate::actors::Candidate;
use crate::actors::RouterActor;
use crate::crypto::key_aad;
use crate::hops;
use crate::http::request_id::RequestId;
use crate::http::AppState;
use crate::providers::{Failure, FailureKind, QuotaNews, UpstreamRequest};
use crate::request_record::AttemptRecord;
use crate::routing::budget::keywide::JointLease;
use crate::routing::budget::{Outcome, Settlement};
use crate::routing::sticky::SessionKey;
use crate::timefmt::now_unix_ms;

/// What every attempt of one client request shares.
#[derive(Clone)]
pub(super) struct Upstream {
    /// Settings, keys and the registry.
    pub state: web::Data<AppState>,
    /// This worker's ProviderActor.
    pub provider: web::Data<LocalProvider>,
    /// This worker's RouterActor (plans, served turns, failed keys).
    pub router: web::Data<LocalRouter>,
    /// The hop list every attempt carries, so a key that leads back here is caught on entry.
    pub hops: HeaderValue,
    /// For log lines; `None` only when the app runs without the request-id middleware.
    pub request_id: Option<RequestId>,
    /// The request's estimated prompt tokens, for answers that count none.
    pub prompt_estimate: u32,
}

/// An attempt the upstream answered: its first event (never a quota report) and the rest to come.
pub(super) struct Opened {
    /// The first event: a complete answer, a chunk, or a failure.
    pub first: Option<UpstreamEvent>,
    /// The events after it.
    pub events: mpsc::Receiver<UpstreamEvent>,
    /// What the upstream's headers said about the key's quota.
    pub news: QuotaNews,
}

impl Upstream {
    /// Holds a lease `candidate`'s limiter granted.
    pub fn hold(&self, lease: JointLease, candidate: &Candidate) -> HeldLease {
        HeldLease::new(lease, &candidate.limiter)
    }

    /// Binds the request's conversation to `candidate`, which served it.
    pub fn served(&self, session: SessionKey, candidate: &Candidate) {
        self.router
            .served(session, candidate.platform, candidate.model.clone());
    }

    /// Sends `work` to `candidate` and waits for its first event. With an `alternative` left, the platform's
    /// time-to-first-token limit applies so a slow route gives way; the last candidate may take the whole
    /// upstream timeout.
    pub async fn open(
        &self,
        candidate: &Candidate,
        work: &Work,
        alternative: bool,
    ) -> Result<Opened, Failure> {
        if !self.provider.connected() {
            return Err(Failure::transport(
                FailureKind::Transient,
                "provider actor unavailable",
            ));
        }
        let (sender, mut events) = event_channel();
        self.provider
            .do_send(self.prepare(candidate, work, alternative, sender)?);
        let mut news = QuotaNews::default();
        let first = loop {
            match events.recv().await {
                Some(UpstreamEvent::Quota(said)) => news = said,
                other => break other,
            }
        };
        Ok(Opened {
            first,
            events,
            news,
        })
    }

    /// The attempt for the ProviderActor: the platform's adapter, its requests for `candidate` (one, or an
    /// embeddings request's batches; the key opened for this call only), the answer to expect, the time limits,
    /// and where its `events` go.
    fn prepare(
        &self,
        candidate: &Candidate,
        work: &Work,
        alternative: bool,
        events: mpsc::Sender<UpstreamEvent>,
    ) -> Result<Dispatch, Failure> {
        let key = &candidate.key;
        let provider = self
            .state
            .registry
            .adapter(candidate.platform)
            .cloned()
            .ok_or_else(|| {
                Failure::transport(
                    FailureKind::ModelUnavailable,
                    format!("no adapter for {}", candidate.platform),
                )
            })?;
        let secret = self
            .state
            .cipher
            .open(
                &key.nonce,
                &key.ciphertext,
                &key_aad(key.id, key.platform.id()),
            )
            .map_err(|_| {
                Failure::transport(
                    FailureKind::InvalidKey,
                    "the stored key could not be decrypted",
                )
            })?;
        let target = crate::providers::Target {
            base_url: &key.base_url,
            model: &candidate.model,
            secret: &secret,
        };
        let capped = match (work, candidate.max_output) {
            (Work::Chat(request), Some(max)) => request.capped_at(max),
            _ => None,
        };
        let (built, expect) = match work {
            Work::Chat(request) => (
                provider
                    .chat_request(&target, capped.as_ref().unwrap_or(request))
                    .map(|one| vec![one]),
                if request.stream {
                    Expect::ChatStream {
                        client_wants_usage: request.wants_stream_usage(),
                    }
                } else {
                    Expect::Chat
                },
            ),
            Work::Embeddings(request) => (
                request
                    .batches(provider.max_embedding_inputs())
                    .iter()
                    .map(|batch| provider.embeddings_request(&target, batch))
                    .collect(),
                Expect::Embeddings {
                    format: request.encoding_format,
                    prompt_estimate: self.prompt_estimate,
                },
            ),
        };
        let requests: Vec<UpstreamRequest> =
            built.map_err(|m| Failure::transport(FailureKind::BadRequest, m))?;
        let mut requests = requests.into_iter().map(|mut request| {
            request.headers.push((hops::HEADER, self.hops.clone()));
            request
        });
        let request = requests.next().ok_or_else(|| {
            Failure::transport(FailureKind::BadRequest, "the request has nothing to send")
        })?;
        Ok(Dispatch {
            events,
            provider,
            request,
            follow_ups: requests.collect(),
            expect,
            model: candidate.model.clone(),
            timeouts: Timeouts::for_attempt(&self.state.config, candidate.platform, alternative),
        })
    }

    /// Settles a failed attempt: logged, the router told when the key is at fault, the lease settled as failed.
    pub fn settle_failure(
        &self,
        candidate: &Candidate,
        lease: HeldLease,
        failure: &Failure,
        news: QuotaNews,
    ) {
        self.report_failure(candidate, failure);
        lease.settle(Outcome {
            settlement: Settlement::Failed(failure.clone()),
            answered_ms: now_unix_ms(),
            news,
        });
    }

    /// Logs a failed attempt and tells the router when the failure says something about the key.
    fn report_failure(&self, candidate: &Candidate, failure: &Failure) {
        log::info!(
            "request {}: attempt {}/{} key {} failed: {} {}",
            self.request_id.as_ref().map_or("-", RequestId::as_str),
            candidate.platform,
            candidate.model,
            candidate.key.id,
            failure.kind.label(),
            failure
        );
        report_key(&self.router, candidate.key.id, failure);
    }
}

/// The request log's entry for one attempt on `candidate`, started at `since`.
pub(super) fn attempt_record(
    candidate: &Candidate,
    outcome: &'static str,
    status: Option<u16>,
    since: std::time::Instant,
    message: Option<String>,
) -> AttemptRecord {
    AttemptRecord {
        platform: candidate.platform.id(),
        model: candidate.model.clone(),
        key_id: candidate.key.id,
        outcome,
        status,
        latency_ms: elapsed_ms(since),
        message,
        resumed_after: None,
    }
}

/// Milliseconds since `since`, as the request log keeps them.
pub(super) fn elapsed_ms(since: std::time::Instant) -> u32 {
    u32::try_from(since.elapsed().as_millis()).unwrap_or(u32::MAX)
}

/// Tells the router about a failure that implicates the key (its status and the dashboard show it).
pub(super) fn report_key(
    router: &Addr<RouterActor>,
    key: crate::provider_key::KeyId,
    failure: &Failure,
) {
    if failure.kind.implicates_key() {
        router.do_send(KeyFailed {
            key,
            kind: failure.kind,
            message: failure.to_string(),
        });
    }
}
