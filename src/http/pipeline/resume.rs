//! Looking for a continuation of a stream that broke after its first byte: the request's candidates are asked,
//! in their usual order, to continue the partial answer given as an assistant prefill, among platforms known to
//! continue one (`Provider::prefill`). A candidate that refuses, fails or starts the answer over is settled and
//! the next one is tried, a few at most; the first that truly continues hands its stream to the relay. Nothing
//! of a rejected candidate reaches the client. It must not write to the client or the request log itself.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::attempt::{attempt_record, Upstream};
use super::Work;
use crate::actors::limiter::{Acquire, HeldLease};
use crate::actors::provider::UpstreamEvent;
use crate::actors::router::{Ask, Plan, Planned};
use crate::actors::Candidate;
use crate::openai::chat::{ChatRequest, Message};
use crate::provider_key::KeyId;
use crate::providers::{Failure, FailureKind, Prefill, QuotaNews};
use crate::request_record::AttemptRecord;
use crate::routing::budget::{Outcome, Settlement};
use crate::routing::estimate::{self, Cost};
use crate::routing::resume::{Partial, Splice, Spliced};
use crate::routing::sticky::SessionKey;
use crate::timefmt::now_unix_ms;

/// Most candidates asked to continue one broken stream.
const MAX_CONTINUATION_ATTEMPTS: usize = 3;

/// What a continuation needs from the request it continues.
pub(super) struct Resumer {
    /// How attempts are sent.
    pub upstream: Upstream,
    /// The client's request.
    pub request: Arc<ChatRequest>,
    /// What it asks of the route table.
    pub ask: Ask,
    /// Its conversation, for routing.
    pub session: SessionKey,
    /// Its estimated cost, for leases.
    pub cost: Cost,
}

/// A candidate that continues the answer.
pub(super) struct Continued {
    /// Who continues it.
    pub candidate: Candidate,
    /// Its budget lease, to settle when the stream ends.
    pub lease: HeldLease,
    /// The rest of its stream.
    pub events: mpsc::Receiver<UpstreamEvent>,
    /// What its headers said about the quota.
    pub news: QuotaNews,
    /// When it answered (its use counts from then).
    pub answered_ms: i64,
    /// Splices its chunks onto the partial answer.
    pub splice: Splice,
    /// Its first chunks, already spliced, for the client.
    pub ready: Vec<Bytes>,
}

/// How the search ended, with every attempt it made (the last, on success, the one that continues).
pub(super) struct Search {
    /// The continuation, or the last reason none was found.
    pub outcome: Result<Continued, Failure>,
    /// The attempts, for the request log.
    pub attempts: Vec<AttemptRecord>,
}

impl Resumer {
    /// Looks for a candidate to continue `partial`, never the route that broke (`broken`: its key and model).
    pub async fn continue_after(&self, partial: Partial, broken: (KeyId, Arc<str>)) -> Search {
        let mut attempts = Vec::new();
        let outcome = self.search(&partial, &broken, &mut attempts).await;
        Search { outcome, attempts }
    }

    async fn search(
        &self,
        partial: &Partial,
        broken: &(KeyId, Arc<str>),
        attempts: &mut Vec<AttemptRecord>,
    ) -> Result<Continued, Failure> {
        let plan = Plan {
            ask: self.ask.clone(),
            session: self.session,
            cursor: None,
            cost: self.cost,
        };
        let none = || {
            Failure::transport(
                FailureKind::Interrupted,
                "no other model that continues a partial answer could take over",
            )
        };
        let Ok(Ok(Planned {
            candidates,
            first_lease,
            ..
        })) = self.upstream.router.send(plan).await
        else {
            return Err(none());
        };
        // The router took a lease for the first candidate; it is used or given back, never dropped.
        let mut first_lease = first_lease;
        let mut last = None;
        let partial_tokens = estimate::text_tokens(partial.text.as_bytes());
        for candidate in candidates {
            let style = self
                .upstream
                .state
                .registry
                .adapter(candidate.platform)
                .map_or(Prefill::Unknown, |a| a.prefill());
            let usable = style != Prefill::Unknown
                && (candidate.key.id, candidate.model.clone()) != *broken
                && attempts.len() < MAX_CONTINUATION_ATTEMPTS;
            let answer = match first_lease.take() {
                Some(answer) => Ok(answer),
                None if usable => {
                    candidate
                        .limiter
                        .addr()
                        .send(Acquire { cost: self.cost })
                        .await
                }
                None => continue,
            };
            let lease = match answer {
                Ok(Ok(lease)) => self.upstream.hold(lease, &candidate),
                _ => continue,
            };
            if !usable {
                lease.release();
                continue;
            }
            let request = Work::Chat(Arc::new(with_prefill(&self.request, &partial.text, style)));
            let started = Instant::now();
            let splice = Splice::new(partial, partial_tokens);
            match self.try_one(&candidate, &request, lease, splice).await {
                Ok(continued) => {
                    let mut resumed =
                        attempt_record(&candidate, "resumed", Some(200), started, None);
                    resumed.resumed_after =
                        Some(u32::try_from(partial.text.chars().count()).unwrap_or(u32::MAX));
                    attempts.push(resumed);
                    return Ok(continued);
                }
                Err(failure) => {
                    attempts.push(attempt_record(
                        &candidate,
                        failure.kind.label(),
                        failure.status,
                        started,
                        Some(failure.message.clone()),
                    ));
                    last = Some(failure);
                }
            }
        }
        Err(last.unwrap_or_else(none))
    }

    /// Asks one candidate to continue and reads its opening until it is clear whether it does.
    async fn try_one(
        &self,
        candidate: &Candidate,
        request: &Work,
        lease: HeldLease,
        mut splice: Splice,
    ) -> Result<Continued, Failure> {
        let opened = match self.upstream.open(candidate, request, true).await {
            Ok(opened) => opened,
            Err(failure) => {
                return Err(self.settle_failed(candidate, lease, failure, QuotaNews::default()))
            }
        };
        let (mut events, news) = (opened.events, opened.news);
        let answered_ms = now_unix_ms();
        let mut next = opened.first;
        loop {
            let spliced = match next {
                Some(UpstreamEvent::Chunk(chunk)) => splice.feed(&chunk),
                Some(UpstreamEvent::KeepAlive | UpstreamEvent::Quota(_)) => Spliced::Undecided,
                Some(UpstreamEvent::Done { .. }) | None => splice.finish(),
                Some(UpstreamEvent::Failed(failure)) => {
                    return Err(self.settle_failed(candidate, lease, failure, news))
                }
                Some(UpstreamEvent::Complete { .. }) => {
                    let failure = Failure::transport(
                        FailureKind::Undecodable,
                        "answered a streamed request with a whole answer",
                    );
                    return Err(self.settle_failed(candidate, lease, failure, news));
                }
            };
            match spliced {
                Spliced::Undecided => next = events.recv().await,
                Spliced::StartedOver => {
                    // The provider did the work: its use counts, but nothing of it reaches the client.
                    lease.settle(Outcome {
                        settlement: Settlement::Served {
                            tokens: None,
                            reported_prompt: None,
                        },
                        answered_ms,
                        news,
                    });
                    return Err(Failure::transport(
                        FailureKind::Undecodable,
                        "started the answer over instead of continuing it",
                    ));
                }
                Spliced::Continues(ready) => {
                    return Ok(Continued {
                        candidate: candidate.clone(),
                        lease,
                        events,
                        news,
                        answered_ms,
                        splice,
                        ready,
                    })
                }
            }
        }
    }

    fn settle_failed(
        &self,
        candidate: &Candidate,
        lease: HeldLease,
        failure: Failure,
        news: QuotaNews,
    ) -> Failure {
        self.upstream
            .settle_failure(candidate, lease, &failure, news);
        failure
    }
}

/// The request with the partial answer as a trailing assistant message, marked as a prefix where the platform
/// wants that.
fn with_prefill(request: &ChatRequest, partial: &str, style: Prefill) -> ChatRequest {
    let mut request = request.clone();
    let mut extra = serde_json::Map::new();
    if style == Prefill::Flagged {
        extra.insert("prefix".into(), Value::Bool(true));
    }
    request.messages.push(Message {
        role: "assistant".into(),
        content: Value::String(partial.to_owned()),
        extra,
    });
    request.stream = true;
    request
}
