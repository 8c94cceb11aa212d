//! The response cache in the pipeline: a request's lookup (its key from the door, the caller's scope and the
//! body; what its `Cache-Control` allows), a hit played back through the front door's [`Render`] (streamed or
//! not, as the request asks, whichever way the answer was first served), and a miss's answer kept once it is
//! whole and successful. It must not decide routing; a miss goes on through the pipeline unchanged.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::{Bytes, BytesMut};

use super::attempt::elapsed_ms;
use super::{routed_via, Render, Work};
use crate::actors::Candidate;
use crate::client_keys::Caller;
use crate::openai::chat::Usage;
use crate::openai::replay::{chunks_of, Gathered};
use crate::platform::Platform;
use crate::request_record::RequestRecord;
use crate::response_cache::{Allowed, CacheKey, Cached, ResponseCache, Scope};
use crate::timefmt::now_unix_ms;

/// The header that says whether an answer came from the cache.
const X_CACHE: &str = "x-cache";

/// One request's use of the cache, before its body is known.
pub(super) struct Lookup {
    cache: Arc<ResponseCache>,
    /// The front door's route.
    door: String,
    scope: Scope,
    allowed: Allowed,
    key: Option<CacheKey>,
}

/// What the cache did for a request.
pub(super) enum Consulted {
    /// It holds the answer.
    Hit(Arc<Cached>),
    /// It does not (or may not say): the answer is served, marked a miss, and kept when allowed.
    Miss(Miss),
}

/// A request the cache did not answer.
#[derive(Clone)]
pub(super) struct Miss {
    cache: Arc<ResponseCache>,
    /// Where its answer is kept; `None` when it may not be.
    keep: Option<CacheKey>,
}

impl Lookup {
    /// The lookup of `http`'s request by `caller`, when the cache is on.
    pub fn of(http: &HttpRequest, cache: &Arc<ResponseCache>, caller: &Caller) -> Lookup {
        let client = match caller {
            Caller::Owner => None,
            Caller::Client(client) => Some(client.id),
        };
        let cache_control = http
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok());
        Lookup {
            cache: cache.clone(),
            door: http.path().to_owned(),
            scope: cache.scope(client),
            allowed: Allowed::of(cache_control),
            key: None,
        }
    }

    /// Takes the request's key from the body the client sent (before its door translated it).
    pub fn key(&mut self, body: &[u8]) {
        self.key = CacheKey::of(&self.door, self.scope, body);
    }

    /// Looks the request up, if it may be.
    pub fn consult(self) -> Consulted {
        let hit = match (self.key, self.allowed.read) {
            (Some(key), true) => self.cache.get(&key, Instant::now()),
            _ => {
                self.cache.count_miss();
                None
            }
        };
        match hit {
            Some(hit) => Consulted::Hit(hit),
            None => Consulted::Miss(Miss {
                keep: self.key.filter(|_| self.allowed.write),
                cache: self.cache,
            }),
        }
    }
}

impl Miss {
    /// Marks an answer's head as not from the cache.
    pub fn mark(head: &mut HttpResponseBuilder) {
        head.insert_header((X_CACHE, "miss"));
    }

    /// Keeps a whole answer served by `served`.
    pub fn keep_whole(&self, body: &Bytes, usage: Usage, served: &Candidate) {
        if let Some(key) = self.keep {
            let answer = Cached {
                body: body.clone(),
                usage,
                platform: served.platform,
                model: served.model.clone(),
            };
            self.cache.put(key, answer, Instant::now());
        }
    }

    /// Gathers a stream served by `served`, to keep it once it completes; `None` when it may not be kept.
    pub fn gather(self, served: &Candidate) -> Option<Gathering> {
        self.keep?;
        Some(Gathering {
            miss: self,
            gathered: Gathered::default(),
            platform: served.platform,
            model: served.model.clone(),
        })
    }
}

/// A streamed miss's answer, gathered chunk by chunk.
pub(super) struct Gathering {
    miss: Miss,
    gathered: Gathered,
    platform: Platform,
    model: Arc<str>,
}

impl Gathering {
    /// Takes in one chunk relayed to the client.
    pub fn add(&mut self, payload: &[u8]) {
        self.gathered.add(payload);
    }

    /// The stream completed with `usage`: keeps the whole answer it made.
    pub fn keep(self, usage: Usage) {
        let (Some(key), Some(body)) = (self.miss.keep, self.gathered.completion(usage)) else {
            return;
        };
        let answer = Cached {
            body: Bytes::from(body),
            usage,
            platform: self.platform,
            model: self.model,
        };
        self.miss.cache.put(key, answer, Instant::now());
    }
}

/// The request-log row of a request `hit` answered: no platform, no attempts, no tokens spent.
pub(super) fn hit_record(hit: &Cached, work: &Work, started: Instant) -> RequestRecord {
    RequestRecord {
        ts_ms: now_unix_ms(),
        requested_model: work.model().to_owned(),
        model: Some(hit.model.clone()),
        status: 200,
        latency_ms: elapsed_ms(started),
        stream: work.stream(),
        cached: true,
        ..RequestRecord::default()
    }
}

/// Plays `hit` back for `work` through `render`: a whole answer, or a stream of the chunks an upstream would
/// have sent. `None` when the kept answer cannot be shown that way (the request then goes upstream).
pub(super) fn replay(hit: &Cached, work: &Work, render: &mut dyn Render) -> Option<HttpResponse> {
    let mut head = HttpResponse::Ok();
    head.insert_header((X_CACHE, "hit"))
        .insert_header(routed_via(hit.platform, &hit.model));
    let request = match work {
        Work::Chat(request) if request.stream => request,
        _ => {
            let body = render.whole(hit.body.clone()).ok()?;
            return Some(head.content_type("application/json").body(body));
        }
    };
    let with_usage = request
        .extra
        .get("stream_options")
        .and_then(|options| options.get("include_usage"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let mut out = BytesMut::new();
    for chunk in chunks_of(&hit.body, with_usage)? {
        out.extend(render.chunk(&chunk));
    }
    out.extend_from_slice(&render.done(hit.usage));
    Some(
        head.insert_header((CONTENT_TYPE, "text/event-stream"))
            .insert_header((CACHE_CONTROL, "no-cache"))
            .body(out.freeze()),
    )
}
