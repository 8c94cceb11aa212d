//! A mock upstream that speaks the OpenAI chat wire format with scripted behaviour per API key: answers,
//! streams, errors with any status/headers/body, delays, silence, streams dropped mid-answer or ended without
//! `[DONE]`. It records every request and notices when a client abandons a stream.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

/// One scripted reply.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A normal completion (or stream, if the request asked for one) with this content.
    Answer(String),
    /// A stream of these content pieces.
    Stream(StreamPlan),
    /// Any status, headers and body.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Accept the request and never answer.
    Silence,
    /// A 200 `text/event-stream` body sent exactly as given.
    RawSse(String),
    /// Wait this long before sending the head of the inner reply.
    Delayed(Duration, Box<Reply>),
    /// A 200 JSON answer whose body breaks off after these bytes.
    Truncated(String),
    /// A stream of these content pieces that then goes silent, neither finishing nor closing.
    StallAfter(Vec<String>),
}

/// How a scripted stream behaves.
#[derive(Clone, Debug)]
pub struct StreamPlan {
    /// Content pieces, one chunk each.
    pub pieces: Vec<String>,
    /// Pause between chunks.
    pub chunk_delay: Duration,
    /// Break the connection after this many content chunks.
    pub drop_after: Option<usize>,
    /// Whether to end with `data: [DONE]`.
    pub done: bool,
}

impl StreamPlan {
    /// A stream of `pieces`, one chunk each, sent at once and ended with `[DONE]`; the methods below vary it.
    pub fn of(pieces: &[&str]) -> StreamPlan {
        StreamPlan {
            pieces: pieces.iter().map(|p| (*p).to_owned()).collect(),
            chunk_delay: Duration::ZERO,
            drop_after: None,
            done: true,
        }
    }

    /// Pauses `delay` before each chunk.
    pub fn paced(self, delay: Duration) -> StreamPlan {
        StreamPlan {
            chunk_delay: delay,
            ..self
        }
    }

    /// Breaks the connection after `chunks` content chunks.
    pub fn cut_after(self, chunks: usize) -> StreamPlan {
        StreamPlan {
            drop_after: Some(chunks),
            ..self
        }
    }

    /// Ends without `[DONE]`.
    pub fn without_done(self) -> StreamPlan {
        StreamPlan {
            done: false,
            ..self
        }
    }

    /// The whole answer in one content chunk, as a non-scripted streaming request gets it.
    fn whole(text: String) -> StreamPlan {
        StreamPlan::of(&[&text])
    }
}

impl Reply {
    /// A reply of `status` with `body` and no extra headers.
    pub fn body(status: u16, body: impl Into<String>) -> Reply {
        Reply::Status {
            status,
            headers: vec![],
            body: body.into(),
        }
    }

    /// An error reply with an OpenAI-shaped body.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        let body =
            json!({"error": {"message": message, "type": "invalid_request_error", "code": code}})
                .to_string();
        Reply::Status {
            status,
            headers: vec![],
            body,
        }
    }

    /// A 429 with `retry-after` seconds.
    pub fn rate_limited(retry_after_secs: u64) -> Reply {
        let body = json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}).to_string();
        Reply::Status {
            status: 429,
            headers: vec![("retry-after".into(), retry_after_secs.to_string())],
            body,
        }
    }

    /// A stream of pieces with a delay between them.
    pub fn stream(pieces: &[&str], chunk_delay: Duration) -> Reply {
        Reply::Stream(StreamPlan {
            pieces: pieces.iter().map(|p| p.to_string()).collect(),
            chunk_delay,
            drop_after: None,
            done: true,
        })
    }
}

/// What the mock saw.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Every header, names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The bearer key.
    pub key: String,
    /// Parsed JSON body.
    pub body: Value,
}

impl Recorded {
    /// The value of header `name` (lower-case), if the request carried it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    scripts: HashMap<String, VecDeque<Reply>>,
    outages: HashMap<String, (std::time::Instant, Reply)>,
    requests: Vec<Recorded>,
}

/// Runs an HTTP server configured by `configure` on a free 127.0.0.1 port, in its own thread and actix System;
/// answers with the port and the handle that stops it.
pub fn serve(
    configure: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> (u16, actix_web::dev::ServerHandle) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = HttpServer::new(move || App::new().configure(configure.clone()))
                .workers(1)
                .disable_signals()
                // A client that closes its side is gone: drop its reply at once, so an abandoned stream is
                // noticed even while the server is between chunks.
                .h1_allow_half_closed(false)
                .bind(("127.0.0.1", 0))
                .unwrap();
            let port = server.addrs()[0].port();
            let server = server.run();
            tx.send((port, server.handle())).unwrap();
            let _ = server.await;
        });
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

/// A running mock upstream.
pub struct Mock {
    port: u16,
    state: Arc<Mutex<State>>,
    dropped_streams: Arc<AtomicUsize>,
    server: actix_web::dev::ServerHandle,
}

impl Mock {
    /// Starts a mock on a free port in its own thread and actix System.
    pub fn start() -> Mock {
        let state = Arc::new(Mutex::new(State::default()));
        let dropped_streams = Arc::new(AtomicUsize::new(0));
        let (s, d) = (state.clone(), dropped_streams.clone());
        let (port, server) = serve(move |app| {
            app.app_data(web::Data::new((s.clone(), d.clone())))
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .default_service(web::to(handle));
        });
        Mock {
            port,
            state,
            dropped_streams,
            server,
        }
    }

    /// The OpenAI base URL of this mock (`/v1`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Queues a reply for requests made with `key`; with an empty queue the mock answers normally.
    pub fn push(&self, key: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .entry(key.to_owned())
            .or_default()
            .push_back(reply);
    }

    /// Answers every request made with `key` with `reply` for the next `length`, once its queue is empty.
    pub fn outage(&self, key: &str, length: Duration, reply: Reply) {
        let until = std::time::Instant::now() + length;
        self.state
            .lock()
            .unwrap()
            .outages
            .insert(key.to_owned(), (until, reply));
    }

    /// Drops every queued reply.
    pub fn clear_scripts(&self) {
        self.state.lock().unwrap().scripts.clear();
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// How many requests used `key`.
    pub fn count_for(&self, key: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.key == key)
            .count()
    }

    /// How many streams were abandoned by the client before they finished.
    pub fn dropped_streams(&self) -> usize {
        self.dropped_streams.load(Ordering::SeqCst)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

type Shared = web::Data<(Arc<Mutex<State>>, Arc<AtomicUsize>)>;

async fn handle(req: HttpRequest, body: Bytes, shared: Shared) -> HttpResponse {
    let key = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| {
            req.headers()
                .get("x-goog-api-key")
                .and_then(|v| v.to_str().ok())
        })
        .unwrap_or_default()
        .to_owned();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply = {
        let mut state = shared.0.lock().unwrap();
        state.requests.push(Recorded {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            key: key.clone(),
            body: json.clone(),
        });
        let outage = state
            .outages
            .get(&key)
            .filter(|(until, _)| *until > std::time::Instant::now())
            .map(|(_, reply)| reply.clone());
        state
            .scripts
            .get_mut(&key)
            .and_then(VecDeque::pop_front)
            .or(outage)
    };
    let reply = match reply {
        Some(reply) => reply,
        None if req.path().ends_with("/models") => {
            return HttpResponse::Ok().json(json!({"object": "list", "data": []}))
        }
        None => Reply::Answer(format!("Hello from {key}")),
    };
    respond(reply, &json, shared.1.clone()).await
}

async fn respond(mut reply: Reply, request: &Value, dropped: Arc<AtomicUsize>) -> HttpResponse {
    while let Reply::Delayed(delay, inner) = reply {
        actix_rt::time::sleep(delay).await;
        reply = *inner;
    }
    let model = request["model"].as_str().unwrap_or("mock-model").to_owned();
    let streaming = request["stream"].as_bool().unwrap_or(false);
    match reply {
        Reply::RawSse(body) => HttpResponse::Ok()
            .content_type("text/event-stream")
            .body(body),
        Reply::Silence => {
            actix_rt::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
        Reply::Status {
            status,
            headers,
            body,
        } => {
            let mut res = HttpResponse::build(StatusCode::from_u16(status).unwrap());
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                res.content_type("application/json");
            }
            for (k, v) in headers {
                res.insert_header((k, v));
            }
            res.body(body)
        }
        Reply::Truncated(start) => {
            let parts: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from(start)),
                Err(std::io::Error::other("cut by the mock")),
            ];
            let paced = stream::iter(parts).then(|part| async move {
                if part.is_err() {
                    actix_rt::time::sleep(Duration::from_millis(50)).await;
                }
                part
            });
            HttpResponse::Ok()
                .content_type("application/json")
                .streaming(Box::pin(paced))
        }
        Reply::StallAfter(pieces) => {
            let mut payloads = chunk_payloads(&model, &pieces, false);
            payloads.pop();
            let frames: Vec<Result<Bytes, std::io::Error>> = payloads
                .into_iter()
                .map(|p| Ok(Bytes::from(format!("data: {p}\n\n"))))
                .collect();
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .streaming(stream::iter(frames).chain(stream::pending()))
        }
        Reply::Answer(text) if !streaming => HttpResponse::Ok().json(completion(&model, &text)),
        Reply::Answer(text) => sse(StreamPlan::whole(text), &model, request, dropped),
        Reply::Stream(plan) => sse(plan, &model, request, dropped),
        Reply::Delayed(..) => unreachable!("delays are waited out above"),
    }
}

/// The standard non-streamed completion body for `content`.
pub fn completion(model: &str, content: &str) -> Value {
    json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    })
}

/// The chunk JSON payloads a stream of `pieces` consists of (without `data: ` framing).
pub fn chunk_payloads(model: &str, pieces: &[String], include_usage: bool) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    out.extend(
        pieces
            .iter()
            .map(|p| chunk(json!({"content": p}), Value::Null)),
    );
    out.push(chunk(json!({}), json!("stop")));
    if include_usage {
        out.push(
            json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                   "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": pieces.len(), "total_tokens": 11 + pieces.len()}})
            .to_string(),
        );
    }
    out
}

struct Tracked<S> {
    inner: S,
    finished: bool,
    dropped: Arc<AtomicUsize>,
}

impl<S: futures_util::Stream + Unpin> futures_util::Stream for Tracked<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        if let std::task::Poll::Ready(None) = polled {
            self.finished = true;
        }
        polled
    }
}

impl<S> Drop for Tracked<S> {
    fn drop(&mut self) {
        if !self.finished {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn sse(plan: StreamPlan, model: &str, request: &Value, dropped: Arc<AtomicUsize>) -> HttpResponse {
    let include_usage = request["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let payloads = chunk_payloads(model, &plan.pieces, include_usage);
    let mut frames: Vec<Result<Bytes, std::io::Error>> = Vec::new();
    for (i, p) in payloads.into_iter().enumerate() {
        if plan.drop_after.is_some_and(|n| i > n) {
            frames.push(Err(std::io::Error::other("dropped by the mock")));
            break;
        }
        frames.push(Ok(Bytes::from(format!("data: {p}\n\n"))));
    }
    if plan.done && plan.drop_after.is_none() {
        frames.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
    }
    let delay = plan.chunk_delay;
    let paced = stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| async move {
        // The break waits long enough for the chunks before it to be flushed; otherwise actix drops them
        // with the connection and the client sees no response at all.
        let pause = match &frame {
            Err(_) => delay.max(Duration::from_millis(50)),
            Ok(_) if i > 0 => delay,
            Ok(_) => Duration::ZERO,
        };
        if !pause.is_zero() {
            actix_rt::time::sleep(pause).await;
        }
        frame
    });
    let body = Tracked {
        inner: Box::pin(paced),
        finished: false,
        dropped,
    };
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(body)
}

/// An upstream that accepts connections and closes them without a word (unread request bytes make the kernel
/// send a reset), counting the connections it took.
pub struct Hangup {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Hangup {
    /// Listens on a free port in its own thread.
    pub fn start() -> Hangup {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                drop(conn);
            }
        });
        Hangup { port, accepted }
    }

    /// Its base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Connections taken so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A base URL nothing listens on: connecting is refused.
pub fn refusing_base_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/v1")
}

/// A plain TCP relay to another address (as a reverse proxy or a second name for a host would be), counting the
/// connections it took.
pub struct Relay {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Relay {
    /// Listens on a free port in its own thread and pipes every connection to `target` (`host:port`).
    pub fn start(target: String) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for inbound in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let Ok(outbound) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                if let (Ok(a), Ok(b)) = (inbound.try_clone(), outbound.try_clone()) {
                    pipe(a, outbound);
                    pipe(b, inbound);
                }
            }
        });
        Relay { port, accepted }
    }

    /// Its base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Connections taken so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}
