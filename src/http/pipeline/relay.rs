//! The body of a committed stream: relays upstream chunks through the front door's [`Render`] and ends the
//! stream once, with the door's end or its in-band error. When the upstream breaks after the first byte (a
//! dropped connection, a stall, a malformed event), the attempt is settled and, where `STREAM_RESUME` allows and
//! the answer so far is plain text, the answer is continued on another candidate (`resume.rs`), of which only
//! the continuation reaches the client. Every committed stream is settled and logged exactly once, however it
//! ends.
use crate::provider_key::KeyId;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::web;
use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use super::attempt::{elapsed_ms, report_key};
use super::cached::Gathering;
use super::resume::{Resumer, Search};
use super::{ClientSpend, Render};
use crate::actors::limiter::HeldLease;
use crate::actors::provider::UpstreamEvent;
use crate::actors::router::LocalRouter;
use crate::analytics::WorkerLog;
use crate::error::ApiError;
use crate::metrics::Tracked;
use crate::openai::chat::Usage;
use crate::providers::{Failure, FailureKind, QuotaNews};
use crate::request_record::RequestRecord;
use crate::routing::budget::{Outcome, Settlement};
use crate::routing::estimate;
use crate::routing::resume::{Partial, Splice, Spliced};

/// Most continuations of one stream (each may try a few candidates).
const MAX_RESUMES: u8 = 2;

/// What must happen once when a committed attempt ends, however it ends: its lease settled, and the request's
/// row logged.
pub(super) struct Finish {
    /// The attempt's budget lease; `None` once settled.
    pub lease: Option<HeldLease>,
    /// When the upstream's first event arrived: the stream's use counts from then.
    pub answered_ms: i64,
    /// What the upstream's headers said about the quota.
    pub news: QuotaNews,
    /// Told about failures that implicate the key.
    pub router: web::Data<LocalRouter>,
    /// Takes the request's row.
    pub logger: web::Data<WorkerLog>,
    /// The attempt's key and model.
    pub key: KeyId,
    /// The model the attempt asked.
    pub model: Arc<str>,
    /// The request's row, as it stands.
    pub record: RequestRecord,
    /// When the request arrived.
    pub started: Instant,
    /// The prompt's estimated tokens, for usage the upstream never reported.
    pub prompt_estimate: u32,
    /// The client key's spend, when a client key asked.
    pub client: Option<ClientSpend>,
}

/// How a committed attempt ended.
pub(super) enum End {
    /// The upstream completed the answer.
    Done(Option<Usage>),
    /// The upstream failed mid-answer.
    Failed(Failure),
    /// The client went away; the upstream request is cancelled.
    ClientGone,
}

impl Finish {
    /// Settles the lease and logs the request's row.
    fn complete(&mut self, end: End, chunks: usize) {
        if self.lease.is_some() {
            let (status, usage, error) = self.settle(end, chunks);
            self.log(status, usage, error);
        }
    }

    /// Settles the lease as `end` says; answers with the status, usage and error the request's row takes.
    fn settle(&mut self, end: End, chunks: usize) -> (u16, Usage, Option<String>) {
        let estimated = self.estimated(chunks);
        let (settlement, usage, status, error) = match end {
            End::Done(reported) => {
                let usage = reported.unwrap_or(estimated);
                (
                    Settlement::Served {
                        tokens: Some(u64::from(usage.total())),
                        reported_prompt: reported.map(|u| u64::from(u.prompt_tokens)),
                    },
                    usage,
                    200,
                    None,
                )
            }
            End::ClientGone => (
                Settlement::Served {
                    tokens: Some(u64::from(estimated.total())),
                    reported_prompt: None,
                },
                estimated,
                499,
                Some("the client closed the connection".to_owned()),
            ),
            End::Failed(failure) => {
                report_key(&self.router, self.key, &failure);
                let error = failure.to_string();
                (Settlement::Failed(failure), estimated, 502, Some(error))
            }
        };
        if let Some(lease) = self.lease.take() {
            lease.settle(Outcome {
                settlement,
                answered_ms: self.answered_ms,
                news: std::mem::take(&mut self.news),
            });
        }
        (status, usage, error)
    }

    fn estimated(&self, chunks: usize) -> Usage {
        Usage {
            prompt_tokens: self.prompt_estimate,
            completion_tokens: estimate::completion_tokens_from_chunks(chunks),
        }
    }

    fn log(&self, status: u16, usage: Usage, error: Option<String>) {
        let mut record = self.record.clone();
        record.status = status;
        record.latency_ms = elapsed_ms(self.started);
        record.prompt_tokens = usage.prompt_tokens;
        record.completion_tokens = usage.completion_tokens;
        record.attempts = u32::try_from(record.attempt_log.len()).unwrap_or(u32::MAX);
        record.error = error;
        if let Some(client) = &self.client {
            client.settle(&mut record);
        }
        self.logger.record(record);
    }

    /// The attempt broke mid-answer and the answer may go on elsewhere: its lease is settled as failed and its
    /// entry in the row says how it ended; the row itself waits for the continuation.
    fn break_off(&mut self, failure: Failure, chunks: usize) {
        if let Some(last) = self.record.attempt_log.last_mut() {
            last.outcome = failure.kind.label();
            last.message = Some(failure.message.clone());
        }
        self.settle(End::Failed(failure), chunks);
    }
}

/// What a committed stream is doing.
enum Phase {
    /// Relaying the current attempt's events.
    Relaying,
    /// Looking for a continuation of a broken answer; the failure that broke it.
    Resuming(Pin<Box<dyn Future<Output = Search>>>, Failure),
    /// Over: `[DONE]` was sent.
    Closed,
}

/// The body of a committed stream.
pub(super) struct Relay {
    first: Option<Bytes>,
    events: mpsc::Receiver<UpstreamEvent>,
    finish: Finish,
    chunks: usize,
    phase: Phase,
    /// The answer so far, when a break may be continued; `None` when resuming is off.
    partial: Option<Partial>,
    /// How a continuation is looked for.
    resumer: Option<Rc<Resumer>>,
    resumes_left: u8,
    /// Splices the continuation being relayed onto the answer so far.
    splice: Option<Splice>,
    /// Framed chunks ready to go (a continuation's opening).
    queued: VecDeque<Bytes>,
    /// Counts this stream in `freellmapi_streams_in_flight` until the relay is dropped.
    _in_flight: Tracked,
    /// The front door's shape for what the client sees.
    render: Box<dyn Render>,
    /// The answer gathered for the response cache, when it is to be kept.
    gathering: Option<Gathering>,
}

impl Relay {
    /// Relays `first` and then `events`; with a `resumer`, a break after the first byte is continued elsewhere.
    pub fn new(
        first: Bytes,
        events: mpsc::Receiver<UpstreamEvent>,
        finish: Finish,
        resumer: Option<Resumer>,
        in_flight: Tracked,
        render: Box<dyn Render>,
        gathering: Option<Gathering>,
    ) -> Relay {
        Relay {
            first: Some(first),
            events,
            finish,
            chunks: 0,
            phase: Phase::Relaying,
            partial: resumer.as_ref().map(|_| Partial::default()),
            resumer: resumer.map(Rc::new),
            resumes_left: MAX_RESUMES,
            splice: None,
            queued: VecDeque::new(),
            _in_flight: in_flight,
            render,
            gathering,
        }
    }

    /// Renders one chunk for the client, taking note of the answer so far.
    fn relay(&mut self, payload: &[u8]) -> Option<Bytes> {
        if let Some(partial) = &mut self.partial {
            partial.observe(payload);
        }
        if let Some(gathering) = &mut self.gathering {
            gathering.add(payload);
        }
        self.chunks += 1;
        self.render.chunk(payload)
    }

    /// The attempt failed mid-answer: looks for a continuation where that is allowed (answering `None`), or
    /// ends the stream with one in-band error.
    fn break_off(&mut self, failure: Failure) -> Option<Bytes> {
        let failure = match failure.kind {
            FailureKind::Transient => Failure {
                kind: FailureKind::Interrupted,
                ..failure
            },
            _ => failure,
        };
        let partial = self.partial.clone().filter(Partial::resumable);
        let (Some(partial), Some(resumer), true) =
            (partial, self.resumer.clone(), self.resumes_left > 0)
        else {
            return Some(self.fail(failure));
        };
        self.resumes_left -= 1;
        let broken = (self.finish.key, self.finish.model.clone());
        self.finish.break_off(failure.clone(), self.chunks);
        let search = async move { resumer.continue_after(partial, broken).await };
        self.phase = Phase::Resuming(Box::pin(search), failure);
        None
    }

    /// Takes over the continuation the search found, or ends the stream with the failure that broke it.
    fn adopt(&mut self, search: Search, broke: Failure) -> Option<Bytes> {
        self.finish.record.attempt_log.extend(search.attempts);
        let continued = match search.outcome {
            Ok(continued) => continued,
            Err(_) => {
                let (usage, error) = (self.finish.estimated(self.chunks), broke.to_string());
                self.finish.log(502, usage, Some(error));
                return Some(self.end_with_error(&broke));
            }
        };
        self.phase = Phase::Relaying;
        self.events = continued.events;
        self.finish = Finish {
            lease: Some(continued.lease),
            answered_ms: continued.answered_ms,
            news: continued.news,
            router: self.finish.router.clone(),
            logger: self.finish.logger.clone(),
            key: continued.candidate.key.id,
            model: continued.candidate.model.clone(),
            record: std::mem::take(&mut self.finish.record),
            started: self.finish.started,
            prompt_estimate: self.finish.prompt_estimate,
            client: self.finish.client.take(),
        };
        self.splice = Some(continued.splice);
        for chunk in continued.ready {
            let framed = self.relay(&chunk);
            self.queued.extend(framed);
        }
        None
    }

    fn fail(&mut self, failure: Failure) -> Bytes {
        let out = self.end_with_error(&failure);
        let chunks = self.chunks;
        self.finish.complete(End::Failed(failure), chunks);
        out
    }

    /// The in-band error that ends a stream that cannot go on.
    fn end_with_error(&mut self, failure: &Failure) -> Bytes {
        self.phase = Phase::Closed;
        let error = ApiError::upstream(format!(
            "The upstream failed mid-answer: {}",
            failure.message
        ));
        self.render.failed(&error)
    }

    /// The stream's next piece of output, or `None` to look again.
    fn on_event(&mut self, event: Option<UpstreamEvent>) -> Option<Bytes> {
        match event {
            Some(UpstreamEvent::Quota(news)) => {
                self.finish.news = news;
                None
            }
            Some(UpstreamEvent::Chunk(chunk)) => match self.splice.as_mut().map(|s| s.feed(&chunk))
            {
                None => self.relay(&chunk),
                Some(Spliced::Continues(ready)) => {
                    for chunk in ready {
                        let framed = self.relay(&chunk);
                        self.queued.extend(framed);
                    }
                    None
                }
                Some(Spliced::Undecided | Spliced::StartedOver) => None,
            },
            Some(UpstreamEvent::KeepAlive) => Some(self.render.keep_alive()),
            Some(UpstreamEvent::Done { usage }) => {
                let usage = match (&self.splice, usage) {
                    (Some(splice), Some(usage)) => Some(splice.combined(usage)),
                    (_, usage) => usage,
                };
                let chunks = self.chunks;
                let shown = usage.unwrap_or_else(|| self.finish.estimated(chunks));
                self.finish.complete(End::Done(usage), chunks);
                if let Some(gathering) = self.gathering.take() {
                    gathering.keep(shown);
                }
                self.phase = Phase::Closed;
                Some(self.render.done(shown))
            }
            Some(UpstreamEvent::Failed(failure)) => self.break_off(failure),
            Some(UpstreamEvent::Complete { .. }) => self.break_off(Failure::transport(
                FailureKind::Transient,
                "upstream switched from streaming to a whole answer",
            )),
            None => self.break_off(Failure::transport(
                FailureKind::Transient,
                "the upstream reader stopped",
            )),
        }
    }
}

impl Stream for Relay {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(first) = this.first.take() {
                match this.relay(&first) {
                    Some(framed) => return Poll::Ready(Some(Ok(framed))),
                    None => continue,
                }
            }
            if let Some(framed) = this.queued.pop_front() {
                return Poll::Ready(Some(Ok(framed)));
            }
            let out = match &mut this.phase {
                Phase::Closed => return Poll::Ready(None),
                Phase::Resuming(search, broke) => {
                    let Poll::Ready(search) = search.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    let broke = broke.clone();
                    this.adopt(search, broke)
                }
                Phase::Relaying => {
                    let Poll::Ready(event) = this.events.poll_recv(cx) else {
                        return Poll::Pending;
                    };
                    this.on_event(event)
                }
            };
            if let Some(out) = out {
                return Poll::Ready(Some(Ok(out)));
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        match self.phase {
            Phase::Closed => {}
            Phase::Relaying => {
                let chunks = self.chunks;
                self.finish.complete(End::ClientGone, chunks);
            }
            Phase::Resuming(..) => {
                let usage = self.finish.estimated(self.chunks);
                let error = Some("the client closed the connection".to_owned());
                self.finish.log(499, usage, error);
            }
        }
    }
}
