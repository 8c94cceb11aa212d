//! How the Responses front door shows the pipeline's answer: a whole completion as one `response` object, chunks
//! as Responses events, and, when the client asked for it (`store`, on by default), the finished response kept
//! for `GET` and `previous_response_id` at the moment it is complete, before its last byte is sent. Translating
//! is `crate::responses`'s; keeping is `ResponseStore`'s (memory now, the database in the background).

use bytes::Bytes;

use crate::error::ApiError;
use crate::http::pipeline::Render;
use crate::openai::chat::Usage;
use crate::openai::sse;
use crate::response_store::ResponseStore;
use crate::responses::answer::Assembler;
use crate::responses::output::ResponseObject;
use crate::store::responses::StoredResponse;
use crate::timefmt::now_unix_ms;

/// Where and with what a finished response is kept.
pub(super) struct Keep {
    /// The kept responses.
    pub store: ResponseStore,
    /// The response this one continues.
    pub previous: Option<String>,
    /// This request's own input items, as JSON.
    pub input: String,
}

/// Renders one answer in the Responses API's shape.
pub(super) struct ResponsesRender {
    answer: Assembler,
    /// `None` with `store: false`.
    keep: Option<Keep>,
}

impl ResponsesRender {
    /// Renders through `answer`, keeping the result where `keep` says.
    pub fn new(answer: Assembler, keep: Option<Keep>) -> ResponsesRender {
        ResponsesRender { answer, keep }
    }

    /// Keeps `response` (its JSON is `json`) when the client asked for that.
    fn keep(&self, response: &ResponseObject, json: String) {
        if let Some(keep) = &self.keep {
            keep.store.keep(StoredResponse {
                id: response.id.clone(),
                created_ms: now_unix_ms(),
                previous_id: keep.previous.clone(),
                input: keep.input.clone(),
                response: json,
            });
        }
    }
}

impl Render for ResponsesRender {
    fn whole(&mut self, completion: Bytes) -> Result<Bytes, ApiError> {
        let response = self.answer.whole(&completion).map_err(ApiError::upstream)?;
        let json = serde_json::to_string(&response).map_err(ApiError::internal)?;
        self.keep(&response, json.clone());
        Ok(Bytes::from(json))
    }

    fn chunk(&mut self, payload: &[u8]) -> Option<Bytes> {
        let frames = self.answer.chunk(payload);
        (!frames.is_empty()).then(|| Bytes::from(frames))
    }

    fn keep_alive(&mut self) -> Bytes {
        Bytes::from_static(sse::PING)
    }

    fn done(&mut self, usage: Usage) -> Bytes {
        let (frames, response) = self.answer.done(usage);
        if self.keep.is_some() {
            match serde_json::to_string(&response) {
                Ok(json) => self.keep(&response, json),
                Err(e) => log::warn!("response {} was not kept: {e}", response.id),
            }
        }
        Bytes::from(frames)
    }

    fn failed(&mut self, error: &ApiError) -> Bytes {
        Bytes::from(self.answer.failed(&error.message))
    }
}
