//! ProviderActors: each owns one awc client on its own arbiter and runs upstream calls, streaming what it reads
//! back through a bounded channel.
//!
//! awc's client is `!Send`, so it never leaves the arbiter that made it; what crosses threads is the channel's
//! receiving end. Dropping that receiver (the client went away) aborts the upstream request at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use awc::http::header::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::{timeout, timeout_at, Instant};

use crate::openai::chat::Usage;
use crate::openai::embeddings::{EncodingFormat, Vectors};
use crate::openai::sse::SseParser;
use crate::providers::connector::{wire_url, UpstreamConnector};
use crate::providers::{
    Failure, FailureKind, Flow, Provider, QuotaNews, StreamDecoder, UpstreamRequest,
};
use crate::redact::Redactor;
use actix_tls::connect::rustls_0_23::reexports::ClientConfig;

/// How many events may wait between the upstream reader and the client writer.
const CHANNEL_DEPTH: usize = 32;
/// Largest non-streamed answer accepted.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Largest error body read for classification.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Largest document a [`Fetch`] reads.
const MAX_FETCH_BYTES: usize = 4 * 1024 * 1024;
/// A keep-alive is sent to the client after this much upstream silence.
const KEEPALIVE_AFTER: Duration = Duration::from_secs(15);

/// The time limits of one attempt.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Connect (TCP + TLS).
    pub connect: Duration,
    /// Until the first answer event (headers alone do not count).
    pub first_byte: Duration,
    /// Non-streamed whole request; for streams, the longest silence between events.
    pub total: Duration,
}

impl Timeouts {
    /// The limits the configuration sets, with the default time-to-first-token limit (probes).
    pub fn from_config(config: &crate::config::Config) -> Timeouts {
        Timeouts {
            connect: config.connect_timeout,
            first_byte: config.first_byte_timeout,
            total: config.upstream_timeout,
        }
    }

    /// The limits of one chat attempt on `platform`: its time-to-first-token limit while an `alternative`
    /// candidate could take over, else the whole upstream timeout (nothing better to wait for).
    pub fn for_attempt(
        config: &crate::config::Config,
        platform: crate::platform::Platform,
        alternative: bool,
    ) -> Timeouts {
        let first_byte = if alternative {
            config.first_byte_timeout_for(platform)
        } else {
            config.upstream_timeout
        };
        Timeouts {
            first_byte,
            ..Timeouts::from_config(config)
        }
    }
}

/// What the reader of one attempt sends back, in order.
#[derive(Debug)]
pub enum UpstreamEvent {
    /// A complete non-streamed OpenAI answer.
    Complete {
        /// The OpenAI response body.
        body: Bytes,
        /// Usage, if the upstream reported it.
        usage: Option<Usage>,
    },
    /// One OpenAI chunk payload (the JSON after `data: `).
    Chunk(Bytes),
    /// The upstream has been silent for a while; the relay may send a keep-alive comment.
    KeepAlive,
    /// The stream ended properly.
    Done {
        /// Usage, if the upstream reported it.
        usage: Option<Usage>,
    },
    /// The attempt failed (before or during the answer).
    Failed(Failure),
    /// What the upstream said about the key's quota; comes before the answer or failure it arrived with.
    Quota(QuotaNews),
}

/// Runs one attempt, sending its events down `events` (made by [`event_channel`]). It answers nothing: the
/// sender awaits the events, not a reply, so an attempt costs its request one wake-up fewer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Dispatch {
    /// Where the attempt's events go; dropped when the attempt ends.
    pub events: mpsc::Sender<UpstreamEvent>,
    /// The adapter that translates this platform's answers.
    pub provider: Arc<dyn Provider>,
    /// The request to send.
    pub request: UpstreamRequest,
    /// What answer comes back, and so how it is read.
    pub expect: Expect,
    /// Further batches of an embeddings request too large for one upstream call, sent in turn after `request`.
    pub follow_ups: Vec<UpstreamRequest>,
    /// The model asked for, named in translated answers where the upstream names none.
    pub model: Arc<str>,
    /// Time limits.
    pub timeouts: Timeouts,
}

/// What answer an attempt expects, and so how its body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A whole chat completion.
    Chat,
    /// A streamed chat completion; whether the client asked for a usage chunk.
    ChatStream {
        /// Whether a usage-only chunk may be relayed.
        client_wants_usage: bool,
    },
    /// Embeddings, written as the client asked.
    Embeddings {
        /// Float or base64 vectors.
        format: EncodingFormat,
        /// The inputs' estimated tokens, counted where the platform reports none.
        prompt_estimate: u32,
    },
}

/// Sends a probe request and classifies the answer.
#[derive(Message)]
#[rtype(result = "Result<(), Failure>")]
pub struct Probe {
    /// The adapter that classifies the answer.
    pub provider: Arc<dyn Provider>,
    /// The probe request.
    pub request: UpstreamRequest,
    /// Time limits.
    pub timeouts: Timeouts,
}

/// Owns one awc client on its own arbiter.
pub struct ProviderActor {
    client: awc::Client,
    redactor: Redactor,
}

impl Actor for ProviderActor {
    type Context = Context<Self>;
}

impl ProviderActor {
    fn new(connect_timeout: Duration, tls: Arc<ClientConfig>, redactor: Redactor) -> ProviderActor {
        let connector = awc::Connector::new()
            .connector(UpstreamConnector::new(tls))
            .timeout(connect_timeout)
            .limit(0);
        let client = awc::Client::builder()
            .connector(connector)
            .disable_timeout()
            .disable_redirects()
            .no_default_headers()
            .finish();
        ProviderActor { client, redactor }
    }
}

/// The sending end of an attempt's channel; masks secrets in any failure it carries (every known secret, and
/// the ones this attempt sent) before it leaves the actor.
struct Events {
    tx: mpsc::Sender<UpstreamEvent>,
    secrets: Vec<String>,
    redactor: Redactor,
}

impl Events {
    async fn send(
        &self,
        event: UpstreamEvent,
    ) -> Result<(), mpsc::error::SendError<UpstreamEvent>> {
        let event = match event {
            UpstreamEvent::Failed(failure) => {
                UpstreamEvent::Failed(failure.sanitized(&self.redactor, &self.secrets))
            }
            other => other,
        };
        self.tx.send(event).await
    }

    async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// An attempt's event channel: the sender goes in its [`Dispatch`], the receiver to whoever awaits the answer.
pub fn event_channel() -> (mpsc::Sender<UpstreamEvent>, mpsc::Receiver<UpstreamEvent>) {
    mpsc::channel(CHANNEL_DEPTH)
}

impl Handler<Dispatch> for ProviderActor {
    type Result = ();

    fn handle(&mut self, msg: Dispatch, _ctx: &mut Context<Self>) {
        let tx = Events {
            tx: msg.events.clone(),
            secrets: msg.request.secrets(),
            redactor: self.redactor.clone(),
        };
        let client = self.client.clone();
        actix_rt::spawn(async move {
            tokio::select! {
                _ = tx.closed() => {}
                _ = run_attempt(&client, msg, &tx) => {}
            }
        });
    }
}

impl Handler<Probe> for ProviderActor {
    type Result = ResponseFuture<Result<(), Failure>>;

    fn handle(&mut self, msg: Probe, _ctx: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        let secrets = msg.request.secrets();
        let redactor = self.redactor.clone();
        Box::pin(async move {
            let limit = msg.timeouts.first_byte;
            let mut response = match timeout(limit, send(&client, msg.request)).await {
                Err(_) => {
                    return Err(Failure::transport(
                        FailureKind::Timeout,
                        "no answer to the probe in time",
                    ))
                }
                Ok(Err(f)) => return Err(f.sanitized(&redactor, &secrets)),
                Ok(Ok(r)) => r,
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = timeout(limit, response.body().limit(MAX_ERROR_BODY_BYTES)).await;
            let body = body.ok().and_then(Result::ok).unwrap_or_default();
            let outcome = if (200..300).contains(&status) {
                msg.provider.check_probe(&body)
            } else {
                Err(msg.provider.classify(status, &headers, &body))
            };
            outcome.map_err(|failure| failure.sanitized(&redactor, &secrets))
        })
    }
}

/// Fetches one document (a server's model list) within `limit`; answers its status and body (at most 4 MiB).
#[derive(Message)]
#[rtype(result = "Result<(u16, Bytes), Failure>")]
pub struct Fetch {
    /// The GET to send.
    pub request: UpstreamRequest,
    /// Limit of the whole exchange.
    pub limit: Duration,
}

impl Handler<Fetch> for ProviderActor {
    type Result = ResponseFuture<Result<(u16, Bytes), Failure>>;

    fn handle(&mut self, msg: Fetch, _ctx: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        let secrets = msg.request.secrets();
        let redactor = self.redactor.clone();
        Box::pin(async move {
            let exchange = async {
                let mut response = send(&client, msg.request).await?;
                let status = response.status().as_u16();
                let body = response.body().limit(MAX_FETCH_BYTES).await.map_err(|e| {
                    Failure::transport(
                        FailureKind::Transient,
                        format!("reading the answer failed: {e}"),
                    )
                })?;
                Ok((status, body))
            };
            match timeout(msg.limit, exchange).await {
                Err(_) => Err(Failure::transport(
                    FailureKind::Timeout,
                    format!("no answer within {}s", msg.limit.as_secs()),
                )),
                Ok(result) => result.map_err(|f: Failure| f.sanitized(&redactor, &secrets)),
            }
        })
    }
}

type Response = awc::ClientResponse;

async fn send(client: &awc::Client, request: UpstreamRequest) -> Result<Response, Failure> {
    let mut req = client.request(request.method, wire_url(&request.url).as_ref());
    for (name, value) in request.headers {
        req = req.insert_header((name, value));
    }
    let result = if request.body.is_empty() {
        req.send().await
    } else {
        req.send_body(request.body).await
    };
    result.map_err(|e| {
        let kind = match e {
            awc::error::SendRequestError::Timeout => FailureKind::Timeout,
            _ => FailureKind::Transient,
        };
        Failure::transport(kind, format!("upstream connection failed: {e}"))
    })
}

/// Sends the request and forwards what comes back until the answer ends, fails, or the receiver goes away.
async fn run_attempt(client: &awc::Client, msg: Dispatch, tx: &Events) {
    let Dispatch {
        events: _,
        provider,
        request,
        expect,
        follow_ups,
        model,
        timeouts,
    } = msg;
    let first_deadline = Instant::now() + timeouts.first_byte;
    let event = match timeout_at(first_deadline, send(client, request)).await {
        Err(_) => Some(UpstreamEvent::Failed(Failure::transport(
            FailureKind::Timeout,
            format!("no answer within {}s", timeouts.first_byte.as_secs()),
        ))),
        Ok(Err(failure)) => Some(UpstreamEvent::Failed(failure)),
        Ok(Ok(mut response)) => {
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                let headers: HeaderMap = response.headers().clone();
                let body =
                    timeout_at(first_deadline, response.body().limit(MAX_ERROR_BODY_BYTES)).await;
                let body = body.ok().and_then(Result::ok).unwrap_or_default();
                if !forward_quota(&*provider, status, &headers, &body, tx).await {
                    return;
                }
                Some(UpstreamEvent::Failed(
                    provider.classify(status, &headers, &body),
                ))
            } else if !forward_quota(&*provider, status, response.headers(), &[], tx).await {
                None
            } else if let Expect::ChatStream { client_wants_usage } = expect {
                let decoder = provider.stream_decoder(&model, client_wants_usage);
                relay_stream(response, decoder, first_deadline, timeouts, tx).await;
                None
            } else {
                let total_deadline = Instant::now() + timeouts.total;
                Some(
                    match timeout_at(total_deadline, response.body().limit(MAX_BODY_BYTES)).await {
                        Err(_) => UpstreamEvent::Failed(Failure::transport(
                            FailureKind::Timeout,
                            "the answer took too long",
                        )),
                        Ok(Err(e)) => UpstreamEvent::Failed(Failure::transport(
                            FailureKind::Transient,
                            format!("reading the answer failed: {e}"),
                        )),
                        Ok(Ok(body)) => {
                            match decode(
                                client,
                                &*provider,
                                expect,
                                &model,
                                &follow_ups,
                                body,
                                total_deadline,
                            )
                            .await
                            {
                                Ok((body, usage)) => UpstreamEvent::Complete { body, usage },
                                Err(failure) => UpstreamEvent::Failed(failure),
                            }
                        }
                    },
                )
            }
        }
    };
    if let Some(event) = event {
        let _ = tx.send(event).await;
    }
}

/// Reads a whole successful answer as the attempt expects it: a chat completion, or embeddings in OpenAI's list
/// shape (their usage is the platform's count, or the estimate where it counts none).
/// The embeddings of the later batches are fetched here, one after another, before the answer is whole.
async fn decode(
    client: &awc::Client,
    provider: &dyn Provider,
    expect: Expect,
    model: &str,
    follow_ups: &[UpstreamRequest],
    body: Bytes,
    deadline: Instant,
) -> Result<(Bytes, Option<Usage>), Failure> {
    let Expect::Embeddings {
        format,
        prompt_estimate,
    } = expect
    else {
        return provider.decode_body(model, body);
    };
    let mut vectors = provider.decode_embeddings(&body)?;
    for batch in follow_ups {
        let more = timeout_at(deadline, embed_batch(client, provider, batch))
            .await
            .map_err(|_| Failure::transport(FailureKind::Timeout, "the answer took too long"))??;
        vectors.vectors.extend(more.vectors);
        vectors.prompt_tokens = vectors.prompt_tokens.saturating_add(more.prompt_tokens);
    }
    if vectors.prompt_tokens == 0 {
        vectors.prompt_tokens = prompt_estimate;
    }
    let usage = Usage {
        prompt_tokens: vectors.prompt_tokens,
        completion_tokens: 0,
    };
    Ok((Bytes::from(vectors.to_openai(model, format)), Some(usage)))
}

/// Sends one further batch of an embeddings request and reads its vectors.
async fn embed_batch(
    client: &awc::Client,
    provider: &dyn Provider,
    request: &UpstreamRequest,
) -> Result<Vectors, Failure> {
    let mut response = send(client, request.clone()).await?;
    let status = response.status().as_u16();
    let limit = if (200..300).contains(&status) {
        MAX_BODY_BYTES
    } else {
        MAX_ERROR_BODY_BYTES
    };
    let body = response.body().limit(limit).await.map_err(|e| {
        Failure::transport(
            FailureKind::Transient,
            format!("reading the answer failed: {e}"),
        )
    })?;
    if (200..300).contains(&status) {
        provider.decode_embeddings(&body)
    } else {
        Err(provider.classify(status, response.headers(), &body))
    }
}

/// Sends what an answer says about the quota, if anything; `false` if the receiver is gone.
async fn forward_quota(
    provider: &dyn Provider,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    tx: &Events,
) -> bool {
    let news = provider.quota_news(status, headers, body);
    news.is_empty() || tx.send(UpstreamEvent::Quota(news)).await.is_ok()
}

/// Parses the upstream SSE body and forwards decoded chunks, enforcing first-event and idle limits.
async fn relay_stream(
    mut response: Response,
    mut decoder: Box<dyn StreamDecoder>,
    first_deadline: Instant,
    timeouts: Timeouts,
    tx: &Events,
) {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut chunks = Vec::new();
    let mut started = false;
    let mut idle_deadline = Instant::now() + timeouts.total;
    loop {
        let deadline = if started {
            idle_deadline
        } else {
            first_deadline
        };
        let wait = (Instant::now() + KEEPALIVE_AFTER).min(deadline);
        let read = match timeout_at(wait, response.next()).await {
            Ok(read) => read,
            Err(_) if Instant::now() >= deadline => {
                let why = if started {
                    "the upstream stream stalled"
                } else {
                    "no answer in time"
                };
                let _ = tx
                    .send(UpstreamEvent::Failed(Failure::transport(
                        FailureKind::Timeout,
                        why,
                    )))
                    .await;
                return;
            }
            Err(_) => {
                if started && tx.send(UpstreamEvent::KeepAlive).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let bytes = match read {
            None => {
                let mut end = parser.finish(&mut events).map_err(|e| {
                    Failure::transport(
                        FailureKind::Undecodable,
                        format!("the upstream stream is malformed: {e}"),
                    )
                });
                for event in events.drain(..) {
                    if end.is_ok() {
                        end = decoder.event(event, &mut chunks).map(|_| ());
                    }
                }
                let end = end.and_then(|()| decoder.finish(&mut chunks));
                for chunk in chunks.drain(..) {
                    if tx.send(UpstreamEvent::Chunk(chunk)).await.is_err() {
                        return;
                    }
                }
                let last = match end {
                    Ok(()) => UpstreamEvent::Done {
                        usage: decoder.usage(),
                    },
                    Err(failure) => UpstreamEvent::Failed(failure),
                };
                let _ = tx.send(last).await;
                return;
            }
            Some(Err(e)) => {
                let failure = Failure::transport(
                    FailureKind::Transient,
                    format!("the upstream stream broke: {e}"),
                );
                let _ = tx.send(UpstreamEvent::Failed(failure)).await;
                return;
            }
            Some(Ok(bytes)) => bytes,
        };
        if let Err(e) = parser.push(&bytes, &mut events) {
            let failure = Failure::transport(
                FailureKind::Undecodable,
                format!("the upstream stream is malformed: {e}"),
            );
            let _ = tx.send(UpstreamEvent::Failed(failure)).await;
            return;
        }
        for event in events.drain(..) {
            let flow = decoder.event(event, &mut chunks);
            for chunk in chunks.drain(..) {
                started = true;
                if tx.send(UpstreamEvent::Chunk(chunk)).await.is_err() {
                    return;
                }
            }
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Done) => {
                    let _ = tx
                        .send(UpstreamEvent::Done {
                            usage: decoder.usage(),
                        })
                        .await;
                    return;
                }
                Err(failure) => {
                    let _ = tx.send(UpstreamEvent::Failed(failure)).await;
                    return;
                }
            }
        }
        idle_deadline = Instant::now() + timeouts.total;
    }
}

/// The ProviderActor of one HTTP worker, started on that worker's arbiter (in the app factory), so a request's
/// upstream call and its streamed events never cross threads.
#[derive(Clone)]
pub struct LocalProvider(pub Addr<ProviderActor>);

impl LocalProvider {
    /// Starts a ProviderActor on the current arbiter; must run inside an actix System.
    pub fn start(
        connect_timeout: Duration,
        tls: Arc<ClientConfig>,
        redactor: Redactor,
    ) -> LocalProvider {
        LocalProvider(ProviderActor::new(connect_timeout, tls, redactor).start())
    }
}

/// Requests hold the worker's `web::Data<LocalProvider>` (a shared pointer) and call through it, since cloning an
/// actix address allocates.
impl std::ops::Deref for LocalProvider {
    type Target = Addr<ProviderActor>;

    fn deref(&self) -> &Addr<ProviderActor> {
        &self.0
    }
}

/// ProviderActors on their own arbiters, used round-robin (health probes).
#[derive(Clone)]
pub struct ProviderPool {
    actors: Arc<[Addr<ProviderActor>]>,
    next: Arc<AtomicUsize>,
}

impl ProviderPool {
    /// Starts `count` ProviderActors, each on a new arbiter; must run inside an actix System.
    pub fn start(
        count: usize,
        connect_timeout: Duration,
        tls: &Arc<ClientConfig>,
        redactor: &Redactor,
    ) -> ProviderPool {
        let actors: Vec<_> = (0..count.max(1))
            .map(|_| {
                let arbiter = Arbiter::new();
                let (tls, redactor) = (tls.clone(), redactor.clone());
                ProviderActor::start_in_arbiter(&arbiter.handle(), move |_| {
                    ProviderActor::new(connect_timeout, tls, redactor)
                })
            })
            .collect();
        ProviderPool {
            actors: actors.into(),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The next actor in turn.
    pub fn pick(&self) -> &Addr<ProviderActor> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.actors.len();
        &self.actors[i]
    }
}
