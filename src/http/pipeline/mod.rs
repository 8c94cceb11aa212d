//! The one request pipeline every front door runs: plan, lease, attempt, fail over, continue a broken stream,
//! settle, log. A front door parses its own wire shape into the gateway's request (an OpenAI chat request, the
//! shape every adapter translates from), hands it over with a [`Render`] for its own answer shape, and returns
//! what comes back. The pipeline knows no front door's JSON; the decisions it follows are pure functions in
//! `routing`.

mod attempt;
mod give_up;
mod relay;
mod resume;
mod trial;

use std::future::{ready, Ready};
use std::sync::Arc;
use std::time::Instant;

use actix::Addr;
use actix_web::dev::Payload;
use actix_web::http::header::HeaderValue;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::request_id::RequestId;
use super::AppState;
use crate::actors::provider::{LocalProvider, ProviderActor};
use crate::analytics::LogBatcher;
use crate::error::ApiError;
use crate::hops;
use crate::openai::chat::{ChatRequest, Usage};
use crate::routing::estimate::{self, Cost};
use crate::routing::sticky::session_key;
use crate::timefmt::now_unix_ms;
use attempt::Upstream;
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

/// One client request as the pipeline takes it.
pub struct Inbound {
    /// The request in the gateway's shape.
    pub request: ChatRequest,
    /// Its prompt's estimated tokens (front doors estimate from their own body).
    pub prompt_estimate: u32,
}

impl Inbound {
    /// The request, with its prompt estimated from the body it was parsed from.
    pub fn new(request: ChatRequest, body: &[u8]) -> Inbound {
        Inbound {
            request,
            prompt_estimate: estimate::prompt_tokens(body),
        }
    }
}

/// The pipeline as a handler argument: what every front door's request runs with.
pub struct Pipeline {
    state: web::Data<AppState>,
    provider: Addr<ProviderActor>,
    log: Addr<LogBatcher>,
    request_id: Option<RequestId>,
    hops: HeaderValue,
    /// The client's `X-Session-Id`, when it sent one.
    session_id: Option<String>,
    started: Instant,
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
            .map(|p| p.0.clone())
            .ok_or_else(|| ApiError::internal("no ProviderActor is registered"))?;
        let log = http
            .app_data::<web::Data<Addr<LogBatcher>>>()
            .map(|l| l.get_ref().clone())
            .ok_or_else(|| ApiError::internal("no request log batcher is registered"))?;
        let session_id = http
            .headers()
            .get("x-session-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        Ok(Pipeline {
            hops: state.hops.outgoing(http.headers().get(hops::HEADER)),
            request_id: http.extensions().get::<RequestId>().cloned(),
            state,
            provider,
            log,
            session_id,
            started: Instant::now(),
        })
    }

    /// Runs `inbound` to its answer, rendered by `render`; an error is the client's, in the gateway's terms, for
    /// the front door to put in its own shape. The request log gets its row either way.
    pub async fn serve(
        self,
        inbound: Inbound,
        render: impl Render,
    ) -> Result<HttpResponse, ApiError> {
        let Inbound {
            request,
            prompt_estimate,
        } = inbound;
        let explicit = self.session_id.as_deref();
        let session = session_key(explicit.or(request.session_id.as_deref()), &request);
        let cost = Cost {
            prompt: u64::from(prompt_estimate),
            output: u64::from(estimate::output_reserve(request.output_cap())),
        };
        let trial = Trial {
            upstream: Upstream {
                state: self.state.clone(),
                provider: self.provider,
                hops: self.hops,
                request_id: self.request_id,
            },
            state: self.state,
            log: self.log,
            request: Arc::new(request),
            session,
            cost,
            started: self.started,
            ts_ms: now_unix_ms(),
            prompt_estimate,
            attempts: Vec::new(),
        };
        trial.serve(Box::new(render)).await
    }
}
