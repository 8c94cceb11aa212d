//! One client request working through its candidates until one answers: pages of candidates from the router,
//! a budget lease per attempt, the failover policy's verdict after each failure, and the commit of the first
//! answer (whole, or a stream handed to the relay). Failover is allowed until the first byte of an answer reaches
//! the client; after that the relay continues a broken answer elsewhere where it can, or ends it with one in-band
//! error. Every outcome is settled with the candidate's budget, reported to the router and logged off the
//! request path. It knows no front door's shape: rendering is the front door's [`Render`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::attempt::{attempt_record, elapsed_ms, Upstream};
use super::cached::Miss;
use super::give_up::{gave_up, not_capable, stopped_early, wrong_kind};
use super::relay::{Finish, Relay};
use super::resume::Resumer;
use super::{routed_via, ClientSpend, Render, Work};
use crate::actors::limiter::{Acquire, HeldLease};
use crate::actors::provider::UpstreamEvent;
use crate::actors::router::{Ask, Plan, PlanCursor, Planned};
use crate::actors::Candidate;
use crate::analytics::WorkerLog;
use crate::error::ApiError;
use crate::http::AppState;
use crate::openai::chat::Usage;
use crate::providers::{Failure, FailureKind, QuotaNews};
use crate::request_record::{AttemptRecord, RequestRecord};
use crate::routing::budget::{Outcome, Settlement};
use crate::routing::candidates::Unroutable;
use crate::routing::estimate::Cost;
use crate::routing::failover::{Misses, Skip, Verdict};
use crate::routing::repeats::Repeats;
use crate::routing::sticky::SessionKey;
use crate::timefmt::now_unix_ms;

/// Most upstream attempts for one client request.
pub const MAX_ATTEMPTS: usize = 20;
/// Pause before the second chance given to candidates that failed with a transient error (a 5xx, a reset).
const SECOND_CHANCE_PAUSE: Duration = Duration::from_millis(250);

/// One client request working through its candidates.
pub(super) struct Trial {
    pub state: web::Data<AppState>,
    /// How attempts are sent.
    pub upstream: Upstream,
    pub log: web::Data<WorkerLog>,
    pub work: Work,
    /// What it asks of the route table (its model, kind and needs).
    pub ask: Ask,
    pub session: SessionKey,
    /// The request's estimated cost, for leases.
    pub cost: Cost,
    pub started: Instant,
    pub ts_ms: i64,
    pub prompt_estimate: u32,
    pub attempts: Vec<AttemptRecord>,
    /// The client key's spend, when a client key asked.
    pub client: Option<ClientSpend>,
    /// The response cache's miss, when the cache is on: marks the answer and keeps it.
    pub cache: Option<Miss>,
}

impl Trial {
    /// Runs the request to its answer, rendered by `render`; logs the request's row when it ends here (a
    /// stream's row is logged by its relay when the stream ends).
    pub async fn serve(mut self, mut render: Box<dyn Render>) -> Result<HttpResponse, ApiError> {
        let answer = match self.run().await.map(|answer| *answer) {
            Ok(Answer::Whole {
                body,
                usage,
                served,
            }) => {
                if let Some(miss) = &self.cache {
                    miss.keep_whole(&body, usage, &served);
                }
                render.whole(body).map(|out| {
                    let mut head = self.response_head(&served);
                    self.log(200, Some(&served), usage, None);
                    head.content_type("application/json").body(out)
                })
            }
            Ok(Answer::Stream {
                served,
                first,
                events,
                finish,
                resumer,
            }) => Ok(self
                .response_head(&served)
                .insert_header((CONTENT_TYPE, "text/event-stream"))
                .insert_header((CACHE_CONTROL, "no-cache"))
                .insert_header(("x-accel-buffering", "no"))
                .streaming(Relay::new(
                    first,
                    events,
                    finish,
                    resumer,
                    self.state.streams.track(),
                    render,
                    self.cache.clone().and_then(|miss| miss.gather(&served)),
                ))),
            Err(error) => Err(error),
        };
        if let Err(error) = &answer {
            let message = Some(error.message.clone());
            self.log(error.status.as_u16(), None, Usage::default(), message);
        }
        answer
    }

    async fn run(&mut self) -> Result<Box<Answer>, ApiError> {
        let cost = self.cost;
        let planned = self.plan(None, cost).await?;
        // The router already asked the first candidate's budget; the first pass through the loop uses its answer.
        let mut first_lease = planned.first_lease;
        let mut misses = Misses::default();
        let mut skip = Skip::default();
        let mut pending: VecDeque<Candidate> = planned.candidates.into();
        let mut next_page = planned.next;
        let mut second_chance = Vec::new();
        let mut second_pass = false;
        let mut repeats = Repeats::default();
        while self.attempts.len() < MAX_ATTEMPTS {
            let candidate = match pending.pop_front() {
                Some(candidate) => candidate,
                None if next_page.is_some() => {
                    let planned = self.plan(next_page, cost).await?;
                    next_page = planned.next;
                    pending.extend(planned.candidates);
                    continue;
                }
                None if !second_pass && !second_chance.is_empty() => {
                    second_pass = true;
                    actix_rt::time::sleep(SECOND_CHANCE_PAUSE).await;
                    pending.extend(second_chance.drain(..));
                    continue;
                }
                None => break,
            };
            if skip.excludes(candidate.platform, &candidate.model, candidate.context) {
                continue;
            }
            let acquired = match first_lease.take() {
                Some(answer) => Ok(answer),
                None => candidate.limiter.addr().send(Acquire { cost }).await,
            };
            let lease = match acquired {
                Ok(Ok(lease)) => self.upstream.hold(lease, &candidate),
                Ok(Err(denial)) => {
                    misses.denied(&denial, now_unix_ms());
                    continue;
                }
                Err(_) => continue,
            };
            let alternative = pending
                .iter()
                .any(|c| !skip.excludes(c.platform, &c.model, c.context));
            let failure = match self.attempt(&candidate, lease, alternative).await {
                Attempt::Answered(answer) => return Ok(answer),
                Attempt::Failed(failure) => failure,
            };
            if let Some(stop) = repeats.observe(candidate.platform, &failure) {
                return Err(stopped_early(stop));
            }
            skip.observe(
                candidate.platform,
                &candidate.model,
                candidate.context,
                &failure,
            );
            if misses.failed(&failure, second_pass) == Verdict::SecondChance {
                second_chance.push(candidate);
            }
        }
        Err(gave_up(
            misses.give_up(!self.attempts.is_empty()),
            self.work.model(),
            &self.attempts,
        ))
    }

    /// Asks the router for a page of candidates; the first page's failures are the client's answer.
    async fn plan(&self, cursor: Option<PlanCursor>, cost: Cost) -> Result<Planned, ApiError> {
        let plan = Plan {
            ask: self.ask.clone(),
            session: self.session,
            cursor,
            cost,
        };
        match self.upstream.router.send(plan).await.map_err(router_gone)? {
            Ok(planned) => Ok(planned),
            Err(_) if cursor.is_some() => Ok(Planned {
                candidates: Vec::new(),
                next: None,
                first_lease: None,
            }),
            Err(Unroutable::UnknownModel) => Err(ApiError::model_not_found(self.work.model())),
            Err(Unroutable::WrongKind(kind)) => Err(wrong_kind(self.work.model(), kind)),
            Err(Unroutable::NotCapable(lacked)) => Err(not_capable(self.work.model(), &lacked)),
            Err(Unroutable::NoKeys) => Err(ApiError::no_healthy_keys(format_args!(
                "for model '{}': add a key for a platform that serves it, or enable one",
                self.work.model()
            ))),
        }
    }

    /// Sends one attempt and waits for its first event; commits the response if there is one.
    async fn attempt(
        &mut self,
        candidate: &Candidate,
        lease: HeldLease,
        alternative: bool,
    ) -> Attempt {
        let attempt_started = Instant::now();
        let opened = match self.upstream.open(candidate, &self.work, alternative).await {
            Ok(opened) => opened,
            Err(failure) => {
                return self.failed(
                    candidate,
                    lease,
                    failure,
                    QuotaNews::default(),
                    attempt_started,
                )
            }
        };
        let (events, news) = (opened.events, opened.news);
        match opened.first {
            Some(UpstreamEvent::Complete {
                body,
                usage: reported,
            }) => {
                let usage = reported.unwrap_or(Usage {
                    prompt_tokens: self.prompt_estimate,
                    completion_tokens: 0,
                });
                lease.settle(Outcome {
                    settlement: Settlement::Served {
                        tokens: reported.map(|u| u64::from(u.total())),
                        reported_prompt: reported.map(|u| u64::from(u.prompt_tokens)),
                    },
                    answered_ms: now_unix_ms(),
                    news,
                });
                self.record(candidate, "ok", Some(200), attempt_started);
                self.served(candidate);
                Attempt::Answered(Box::new(Answer::Whole {
                    body,
                    usage,
                    served: candidate.clone(),
                }))
            }
            Some(UpstreamEvent::Chunk(first)) => {
                self.record(candidate, "ok", Some(200), attempt_started);
                self.served(candidate);
                let resumer = match &self.work {
                    Work::Chat(request) if self.state.config.stream_resume => Some(Resumer {
                        upstream: self.upstream.clone(),
                        request: request.clone(),
                        ask: self.ask.clone(),
                        session: self.session,
                        cost: self.cost,
                    }),
                    _ => None,
                };
                Attempt::Answered(Box::new(Answer::Stream {
                    served: candidate.clone(),
                    first,
                    events,
                    finish: self.finish(candidate, lease, news),
                    resumer,
                }))
            }
            Some(UpstreamEvent::Failed(failure)) => {
                self.failed(candidate, lease, failure, news, attempt_started)
            }
            Some(
                UpstreamEvent::Done { .. } | UpstreamEvent::KeepAlive | UpstreamEvent::Quota(_),
            )
            | None => {
                let failure = Failure::transport(
                    FailureKind::Transient,
                    "upstream ended the stream without an answer",
                );
                self.failed(candidate, lease, failure, news, attempt_started)
            }
        }
    }

    fn failed(
        &mut self,
        candidate: &Candidate,
        lease: HeldLease,
        failure: Failure,
        news: QuotaNews,
        since: Instant,
    ) -> Attempt {
        self.upstream
            .settle_failure(candidate, lease, &failure, news);
        self.attempts.push(attempt_record(
            candidate,
            failure.kind.label(),
            failure.status,
            since,
            Some(failure.message.clone()),
        ));
        Attempt::Failed(failure)
    }

    fn record(
        &mut self,
        candidate: &Candidate,
        outcome: &'static str,
        status: Option<u16>,
        since: Instant,
    ) {
        self.attempts
            .push(attempt_record(candidate, outcome, status, since, None));
    }

    fn served(&self, candidate: &Candidate) {
        self.upstream.served(self.session, candidate);
    }

    fn response_head(&self, candidate: &Candidate) -> actix_web::HttpResponseBuilder {
        let mut head = HttpResponse::Ok();
        head.insert_header(routed_via(candidate.platform, &candidate.model));
        let failed = self.attempts.len().saturating_sub(1);
        if failed > 0 {
            head.insert_header(("x-fallback-attempts", failed.to_string()));
        }
        if self.cache.is_some() {
            Miss::mark(&mut head);
        }
        head
    }

    fn finish(&self, candidate: &Candidate, lease: HeldLease, news: QuotaNews) -> Finish {
        Finish {
            lease: Some(lease),
            answered_ms: now_unix_ms(),
            news,
            router: self.upstream.router.clone(),
            logger: self.log.clone(),
            key: candidate.key.id,
            model: candidate.model.clone(),
            record: self.record_for(
                200,
                Some(candidate),
                Usage::default(),
                None,
                self.attempts.clone(),
            ),
            started: self.started,
            prompt_estimate: self.prompt_estimate,
            client: self.client.clone(),
        }
    }

    /// The request-log row of this request, ending with `status`, with its `attempts`.
    fn record_for(
        &self,
        status: u16,
        served: Option<&Candidate>,
        usage: Usage,
        error: Option<String>,
        attempts: Vec<AttemptRecord>,
    ) -> RequestRecord {
        RequestRecord {
            ts_ms: self.ts_ms,
            requested_model: self.work.model().to_owned(),
            platform: served.map(|c| c.platform.id()),
            model: served.map(|c| c.model.clone()),
            status,
            latency_ms: elapsed_ms(self.started),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            attempts: u32::try_from(attempts.len()).unwrap_or(u32::MAX),
            stream: self.work.stream(),
            error,
            attempt_log: attempts,
            client: None,
            cached: false,
        }
    }

    /// Logs the request's row; its attempts go with it (nothing reads them after).
    fn log(
        &mut self,
        status: u16,
        served: Option<&Candidate>,
        usage: Usage,
        error: Option<String>,
    ) {
        let attempts = std::mem::take(&mut self.attempts);
        let mut record = self.record_for(status, served, usage, error, attempts);
        if let Some(client) = &self.client {
            client.settle(&mut record);
        }
        self.log.record(record);
    }
}

enum Attempt {
    Answered(Box<Answer>),
    Failed(Failure),
}

/// A committed answer, before the front door renders it. Always boxed, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Answer {
    /// A whole answer (OpenAI chat completion JSON), with its usage and who served it.
    Whole {
        body: Bytes,
        usage: Usage,
        served: Candidate,
    },
    /// A stream whose first chunk has arrived.
    Stream {
        served: Candidate,
        first: Bytes,
        events: mpsc::Receiver<UpstreamEvent>,
        finish: Finish,
        resumer: Option<Resumer>,
    },
}

fn router_gone(e: actix::MailboxError) -> ApiError {
    ApiError::internal(format!("router unavailable: {e}"))
}
