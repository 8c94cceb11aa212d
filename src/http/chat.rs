//! `POST /v1/chat/completions`: parse, plan, then try candidates until one answers, relaying its answer.
//!
//! Failover is allowed until the first byte of an answer reaches the client; after that the relay continues a
//! broken answer elsewhere where it can (`relay.rs`), or ends the stream with one in-band error event and
//! `[DONE]`. Every outcome is settled with the candidate's budget, reported to the router (key health,
//! stickiness) and logged off the request path.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use super::attempt::{attempt_record, elapsed_ms, Upstream};
use super::body::ApiBody;
use super::relay::{Finish, Relay};
use super::request_id::RequestId;
use super::resume::Resumer;
use super::AppState;
use crate::actors::limiter::{Acquire, HeldLease};
use crate::actors::provider::{LocalProvider, UpstreamEvent};
use crate::actors::router::{Plan, PlanCursor, Planned, Served};
use crate::actors::Candidate;
use crate::analytics::{LogBatcher, LogRequest};
use crate::error::ApiError;
use crate::hops;
use crate::openai::chat::{ChatRequest, Usage};
use crate::providers::{Failure, FailureKind, QuotaNews};
use crate::request_record::{AttemptRecord, RequestRecord};
use crate::routing::budget::{Outcome, Settlement};
use crate::routing::candidates::Unroutable;
use crate::routing::estimate::{self, Cost};
use crate::routing::failover::{GiveUp, Misses, Skip, Verdict};
use crate::routing::repeats::{Repeats, Stop};
use crate::routing::sticky::{session_key, SessionKey};
use crate::timefmt::now_unix_ms;

/// Most upstream attempts for one client request.
pub const MAX_ATTEMPTS: usize = 20;
/// Pause before the second chance given to candidates that failed with a transient error (a 5xx, a reset).
const SECOND_CHANCE_PAUSE: Duration = Duration::from_millis(250);

/// Handles one chat completion.
pub async fn chat_completions(
    state: web::Data<AppState>,
    provider: web::Data<LocalProvider>,
    log: web::Data<Addr<LogBatcher>>,
    http: HttpRequest,
    ApiBody(body): ApiBody,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let request =
        ChatRequest::parse(&body).map_err(|m| ApiError::invalid_request("invalid_request", m))?;
    let explicit = http
        .headers()
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let session = session_key(explicit.or(request.session_id.as_deref()), &request);
    let prompt_estimate = estimate::prompt_tokens(&body);
    drop(body);
    let request_id = http.extensions().get::<RequestId>().cloned();
    let hops = state.hops.outgoing(http.headers().get(hops::HEADER));

    let cost = Cost {
        prompt: u64::from(prompt_estimate),
        output: u64::from(estimate::output_reserve(request.output_cap())),
    };
    let mut trial = Trial {
        state: state.clone(),
        upstream: Upstream {
            state: state.clone(),
            provider: provider.0.clone(),
            hops,
            request_id,
        },
        log: log.get_ref().clone(),
        request: Arc::new(request),
        session,
        cost,
        started,
        ts_ms: now_unix_ms(),
        prompt_estimate,
        attempts: Vec::new(),
    };
    match trial.run().await {
        Ok(response) => Ok(response),
        Err(error) => {
            trial.log(
                error.status.as_u16(),
                None,
                Usage::default(),
                Some(error.message.clone()),
            );
            Err(error)
        }
    }
}

/// One client request working through its candidates.
struct Trial {
    state: web::Data<AppState>,
    /// How attempts are sent.
    upstream: Upstream,
    log: Addr<LogBatcher>,
    request: Arc<ChatRequest>,
    session: SessionKey,
    /// The request's estimated cost, for leases.
    cost: Cost,
    started: Instant,
    ts_ms: i64,
    prompt_estimate: u32,
    attempts: Vec<AttemptRecord>,
}

impl Trial {
    async fn run(&mut self) -> Result<HttpResponse, ApiError> {
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
                None => candidate.limiter.send(Acquire { cost }).await,
            };
            let lease = match acquired {
                Ok(Ok(lease)) => HeldLease::new(lease, candidate.limiter.clone()),
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
                Attempt::Answered(response) => return Ok(response),
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
        Err(self.give_up(&misses))
    }

    /// Asks the router for a page of candidates; the first page's failures are the client's answer.
    async fn plan(&self, cursor: Option<PlanCursor>, cost: Cost) -> Result<Planned, ApiError> {
        let plan = Plan {
            model: self.request.model.clone(),
            session: self.session,
            cursor,
            cost,
        };
        match self.state.router.send(plan).await.map_err(router_gone)? {
            Ok(planned) => Ok(planned),
            Err(_) if cursor.is_some() => Ok(Planned {
                candidates: Vec::new(),
                next: None,
                first_lease: None,
            }),
            Err(Unroutable::UnknownModel) => Err(ApiError::model_not_found(&self.request.model)),
            Err(Unroutable::NoKeys) => Err(ApiError::no_healthy_keys(format_args!(
                "for model '{}': add a key for a platform that serves it, or enable one",
                self.request.model
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
        let opened = match self
            .upstream
            .open(candidate, &self.request, alternative)
            .await
        {
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
                let response = self
                    .response_head(candidate)
                    .content_type("application/json")
                    .body(body);
                self.log(200, Some(candidate), usage, None);
                Attempt::Answered(response)
            }
            Some(UpstreamEvent::Chunk(first)) => {
                self.record(candidate, "ok", Some(200), attempt_started);
                self.served(candidate);
                let resumer = self.state.config.stream_resume.then(|| Resumer {
                    upstream: self.upstream.clone(),
                    request: self.request.clone(),
                    session: self.session,
                    cost: self.cost,
                });
                let response = self
                    .response_head(candidate)
                    .insert_header((CONTENT_TYPE, "text/event-stream"))
                    .insert_header((CACHE_CONTROL, "no-cache"))
                    .insert_header(("x-accel-buffering", "no"))
                    .streaming(Relay::new(
                        first,
                        events,
                        self.finish(candidate, lease, news),
                        resumer,
                        self.state.streams.track(),
                    ));
                Attempt::Answered(response)
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
        outcome: &str,
        status: Option<u16>,
        since: Instant,
    ) {
        self.attempts
            .push(attempt_record(candidate, outcome, status, since, None));
    }

    fn served(&self, candidate: &Candidate) {
        self.state.router.do_send(Served {
            session: self.session,
            platform: candidate.platform,
            model: candidate.model.clone(),
        });
    }

    fn response_head(&self, candidate: &Candidate) -> actix_web::HttpResponseBuilder {
        let mut head = HttpResponse::Ok();
        head.insert_header((
            "x-routed-via",
            format!("{}/{}", candidate.platform, candidate.model),
        ));
        let failed = self.attempts.len().saturating_sub(1);
        if failed > 0 {
            head.insert_header(("x-fallback-attempts", failed.to_string()));
        }
        head
    }

    /// The client's answer when no candidate answered, worded from the policy's reason.
    fn give_up(&self, misses: &Misses) -> ApiError {
        let model = &self.request.model;
        match misses.give_up(!self.attempts.is_empty()) {
            GiveUp::Cooling {
                retry_after_secs: secs,
                after_failures: true,
            } => ApiError::rate_limited(
                secs,
                format!("Every candidate for '{model}' is cooling down after upstream failures (errors or timeouts); retry in {secs}s"),
            ),
            GiveUp::Cooling {
                retry_after_secs: secs,
                ..
            }
            | GiveUp::RateLimited {
                retry_after_secs: secs,
            } => ApiError::rate_limited(
                secs,
                format!("Every candidate for '{model}' is rate-limited or cooling down; retry in {secs}s"),
            ),
            GiveUp::TooLargeForBudgets => ApiError::invalid_request(
                "request_too_large_for_budgets",
                "The request needs more tokens than any available model's token budget allows",
            ),
            GiveUp::Rejected(reason) => ApiError::upstream_rejected(reason),
            GiveUp::Failed => self.all_failed(),
        }
    }

    /// The 502 that lists every attempt.
    fn all_failed(&self) -> ApiError {
        let listed: Vec<String> = self
            .attempts
            .iter()
            .map(|a| {
                let status = a
                    .status
                    .map_or_else(|| a.outcome.clone(), |s| s.to_string());
                format!(
                    "{}/{}: {} {}",
                    a.platform,
                    a.model,
                    status,
                    a.message.as_deref().unwrap_or_default()
                )
            })
            .collect();
        ApiError::upstream(format!(
            "All {} upstream attempts failed: {}",
            self.attempts.len(),
            listed.join("; ")
        ))
    }

    fn finish(&self, candidate: &Candidate, lease: HeldLease, news: QuotaNews) -> Finish {
        Finish {
            lease: Some(lease),
            answered_ms: now_unix_ms(),
            news,
            router: self.state.router.clone(),
            logger: self.log.clone(),
            key: candidate.key.id,
            model: candidate.model.clone(),
            record: self.record_for(200, Some(candidate), Usage::default(), None),
            started: self.started,
            prompt_estimate: self.prompt_estimate,
        }
    }

    fn record_for(
        &self,
        status: u16,
        served: Option<&Candidate>,
        usage: Usage,
        error: Option<String>,
    ) -> RequestRecord {
        RequestRecord {
            ts_ms: self.ts_ms,
            requested_model: self.request.model.clone(),
            platform: served.map(|c| c.platform.id().to_owned()),
            model: served.map(|c| c.model.to_string()),
            status,
            latency_ms: elapsed_ms(self.started),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            attempts: u32::try_from(self.attempts.len()).unwrap_or(u32::MAX),
            stream: self.request.stream,
            error,
            attempt_log: self.attempts.clone(),
        }
    }

    fn log(&self, status: u16, served: Option<&Candidate>, usage: Usage, error: Option<String>) {
        self.log
            .do_send(LogRequest(self.record_for(status, served, usage, error)));
    }
}

enum Attempt {
    Answered(HttpResponse),
    Failed(Failure),
}

/// The answer to a request stopped because two platforms failed it the same way that is not theirs to fix.
fn stopped_early(stop: Stop) -> ApiError {
    let platforms: Vec<&str> = stop.platforms.iter().map(|p| p.id()).collect();
    let who = platforms.join(" and ");
    if stop.kind == FailureKind::BadRequest {
        return ApiError::upstream_rejected(format!(
            "{} (refused in the same words by {who}; no further platform was tried)",
            stop.message
        ));
    }
    ApiError::upstream(format!(
        "{who} both answered in a form the gateway could not read ({}). It stopped there rather than spend more \
         quota: the same fault on two platforms points at this request's translation, not at the providers, \
         and no key was benched for it.",
        stop.message
    ))
}

fn router_gone(e: actix::MailboxError) -> ApiError {
    ApiError::internal(format!("router unavailable: {e}"))
}
