//! The one request pipeline every front door runs: plan, lease, attempt, fail over, continue a broken stream,
//! settle, log. A front door parses its own wire shape into the gateway's request (an OpenAI chat request, the
//! shape every adapter translates from), hands it over with a [`Render`] for its own answer shape, and returns
//! what comes back. The pipeline knows no front door's JSON; the decisions it follows are pure functions in
//! `routing`.

mod attempt;
mod cached;
mod give_up;
mod relay;
mod resume;
mod trial;

use std::future::{ready, Ready};
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderValue;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::request_id::RequestId;
use super::AppState;
use crate::actors::provider::LocalProvider;
use crate::actors::router::{Ask, LocalRouter};
use crate::analytics::WorkerLog;
use crate::catalog::ModelKind;
use crate::client_keys::{Caller, Client, ClientKeys};
use crate::error::ApiError;
use crate::hops;
use crate::openai::chat::{ChatRequest, Usage};
use crate::openai::embeddings::EmbeddingsRequest;
use crate::platform::Platform;
use crate::request_record::RequestRecord;
use crate::routing::estimate::{self, Cost};
use crate::routing::needs::Needs;
use crate::routing::sticky::{named_session, session_key};
use crate::timefmt::now_unix_ms;
use attempt::Upstream;
use cached::{Consulted, Lookup};
use trial::Trial;

pub use trial::MAX_ATTEMPTS;

/// How a front door shows an answer. The pipeline hands it the answer in the gateway's own shape (OpenAI chat
/// completion JSON, or chunk payloads of one) and sends what it returns to the client.
pub trait Render: 'static {
    /// A whole, non-streamed answer: the completion's JSON in, the body for the client out.
    fn whole(&mut self, completion: Bytes) -> Result<Bytes, ApiError>;
    /// One chunk's JSON payload; answers the client's frames for it, if any yet.
    fn chunk(&mut self, payload: &[u8]) -> Option<Bytes>;
    /// A frame that keeps a quiet stream's connection open.
    fn keep_alive(&mut self) -> Bytes;
    /// The end of a stream that completed, with its usage (reported, or estimated where the upstream gave none).
    fn done(&mut self, usage: Usage) -> Bytes;
    /// The end of a stream that failed after its first byte and could not be continued.
    fn failed(&mut self, error: &ApiError) -> Bytes;
}

/// What one client request asks of an upstream, in the gateway's shapes.
#[derive(Clone)]
pub enum Work {
    /// A chat completion (every chat-like front door translates into one).
    Chat(Arc<ChatRequest>),
    /// Embeddings of some texts.
    Embeddings(Arc<EmbeddingsRequest>),
}

/// The `x-routed-via` header of an answer: who served it, as `platform/model`.
fn routed_via(platform: Platform, model: &str) -> (&'static str, String) {
    ("x-routed-via", [platform.id(), "/", model].concat())
}

impl Work {
    /// The model asked for.
    pub fn model(&self) -> &str {
        match self {
            Work::Chat(request) => &request.model,
            Work::Embeddings(request) => &request.model,
        }
    }

    /// Which models may serve it.
    pub fn kind(&self) -> ModelKind {
        match self {
            Work::Chat(_) => ModelKind::Chat,
            Work::Embeddings(_) => ModelKind::Embedding,
        }
    }

    /// Whether the answer is streamed.
    pub fn stream(&self) -> bool {
        matches!(self, Work::Chat(request) if request.stream)
    }

    /// The output tokens a lease reserves: embeddings produce none.
    fn output_reserve(&self) -> u32 {
        match self {
            Work::Chat(request) => estimate::output_reserve(request.output_cap()),
            Work::Embeddings(_) => 0,
        }
    }
}

/// One client request as the pipeline takes it.
pub struct Inbound {
    /// The request in the gateway's shape.
    pub work: Work,
    /// Its prompt's estimated tokens (front doors estimate from their own body).
    pub prompt_estimate: u32,
    /// Whether a model name that is neither an alias nor a model routes as `auto` (names a client cannot choose,
    /// such as Claude Code's `claude-…` defaults).
    pub or_auto: bool,
}

impl Inbound {
    /// A chat request, with its prompt estimated from the body it was parsed from.
    pub fn new(request: ChatRequest, body: &[u8]) -> Inbound {
        Inbound {
            work: Work::Chat(Arc::new(request)),
            prompt_estimate: estimate::prompt_tokens(body),
            or_auto: false,
        }
    }

    /// An embeddings request, with its inputs' tokens estimated from the body it was parsed from.
    pub fn embeddings(request: EmbeddingsRequest, body: &[u8]) -> Inbound {
        Inbound {
            work: Work::Embeddings(Arc::new(request)),
            prompt_estimate: estimate::prompt_tokens(body),
            or_auto: false,
        }
    }
}

/// The pipeline as a handler argument: what every front door's request runs with.
pub struct Pipeline {
    state: web::Data<AppState>,
    provider: web::Data<LocalProvider>,
    router: web::Data<LocalRouter>,
    log: web::Data<WorkerLog>,
    request_id: Option<RequestId>,
    hops: HeaderValue,
    /// The client's `X-Session-Id`, when it sent one.
    session_id: Option<String>,
    started: Instant,
    /// Who is asking (the owner, or a client key with its limits).
    caller: Caller,
    /// The request's use of the response cache, when it is on.
    cache: Option<Lookup>,
}

/// A client key's request in flight: its estimate, corrected by the real usage when the request's row is written.
#[derive(Clone)]
pub(super) struct ClientSpend {
    keys: ClientKeys,
    client: Arc<Client>,
    estimate: u32,
}

impl ClientSpend {
    /// Puts the client's name on the row and corrects its token count from the estimate to the row's usage.
    pub(super) fn settle(&self, record: &mut RequestRecord) {
        record.client = Some(self.client.name.clone());
        let actual = i64::from(record.prompt_tokens) + i64::from(record.completion_tokens);
        self.keys
            .settle_tokens(self.client.id, actual - i64::from(self.estimate));
    }
}

impl FromRequest for Pipeline {
    type Error = ApiError;
    type Future = Ready<Result<Pipeline, ApiError>>;

    fn from_request(http: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Pipeline::of(http))
    }
}

impl Pipeline {
    fn of(http: &HttpRequest) -> Result<Pipeline, ApiError> {
        let state = http
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or_else(|| ApiError::internal("the app state is not registered"))?;
        let provider = http
            .app_data::<web::Data<LocalProvider>>()
            .cloned()
            .ok_or_else(|| ApiError::internal("no ProviderActor is registered"))?;
        let router = http
            .app_data::<web::Data<LocalRouter>>()
            .cloned()
            .ok_or_else(|| ApiError::internal("no worker RouterActor is registered"))?;
        let log = http
            .app_data::<web::Data<WorkerLog>>()
            .cloned()
            .ok_or_else(|| ApiError::internal("no request log batcher is registered"))?;
        let session_id = http
            .headers()
            .get("x-session-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let caller = http
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or(Caller::Owner);
        Ok(Pipeline {
            cache: state
                .cache
                .as_ref()
                .map(|cache| Lookup::of(http, cache, &caller)),
            caller,
            hops: state.hops.outgoing(http.headers().get(hops::HEADER)),
            request_id: http.extensions().get::<RequestId>().cloned(),
            state,
            provider,
            router,
            log,
            session_id,
            started: Instant::now(),
        })
    }

    /// Takes the response cache's key of the request from the body the client sent; a front door calls it
    /// before translating the body (a request whose door never calls it is never answered from the cache).
    pub fn keyed(mut self, body: &[u8]) -> Pipeline {
        if let Some(lookup) = &mut self.cache {
            lookup.key(body);
        }
        self
    }

    /// Runs `inbound` to its answer, rendered by `render`; an error is the client's, in the gateway's terms, for
    /// the front door to put in its own shape. The request log gets its row either way.
    pub async fn serve(
        self,
        inbound: Inbound,
        mut render: impl Render,
    ) -> Result<HttpResponse, ApiError> {
        let Inbound {
            work,
            prompt_estimate,
            or_auto,
        } = inbound;
        let client = match self.caller {
            Caller::Owner => None,
            Caller::Client(client) => {
                let keys = self.state.clients.clone();
                if let Err(refusal) = keys.admit(&client, work.model(), u64::from(prompt_estimate))
                {
                    // Refusals are logged too, so the owner sees a client hitting its limits.
                    self.log.record(RequestRecord {
                        ts_ms: now_unix_ms(),
                        requested_model: work.model().to_owned(),
                        status: refusal.status.as_u16(),
                        latency_ms: attempt::elapsed_ms(self.started),
                        stream: work.stream(),
                        error: Some(refusal.message.clone()),
                        client: Some(client.name.clone()),
                        ..RequestRecord::default()
                    });
                    return Err(refusal);
                }
                Some(ClientSpend {
                    keys,
                    client,
                    estimate: prompt_estimate,
                })
            }
        };
        let cache = match self.cache.map(Lookup::consult) {
            Some(Consulted::Hit(hit)) => {
                if let Some(response) = cached::replay(&hit, &work, &mut render) {
                    let mut record = cached::hit_record(&hit, &work, self.started);
                    if let Some(client) = &client {
                        client.settle(&mut record);
                    }
                    self.log.record(record);
                    return Ok(response);
                }
                // Kept, yet not playable as asked (never expected): served afresh, neither marked nor kept.
                None
            }
            Some(Consulted::Miss(miss)) => Some(miss),
            None => None,
        };
        let explicit = self.session_id.as_deref();
        let (session, needs) = match &work {
            Work::Chat(request) => (
                session_key(explicit.or(request.session_id.as_deref()), request),
                Needs::of(request),
            ),
            Work::Embeddings(request) => {
                (named_session(explicit, &request.model), Needs::default())
            }
        };
        let cost = Cost {
            prompt: u64::from(prompt_estimate),
            output: u64::from(work.output_reserve()),
        };
        let ask = Ask {
            model: work.model().into(),
            kind: work.kind(),
            needs,
            or_auto,
        };
        let trial = Trial {
            upstream: Upstream {
                state: self.state.clone(),
                provider: self.provider,
                router: self.router,
                hops: self.hops,
                request_id: self.request_id,
                prompt_estimate,
            },
            state: self.state,
            log: self.log,
            work,
            ask,
            session,
            cost,
            started: self.started,
            ts_ms: now_unix_ms(),
            prompt_estimate,
            attempts: Vec::new(),
            client,
            cache,
        };
        trial.serve(Box::new(render)).await
    }
}
