//! The OpenAI Responses API's wire shapes and their pure translation to and from the gateway's own shape (the
//! OpenAI chat request and answer every provider adapter speaks): a request's items and tools become a chat
//! request (`request`, `input`, `tools`), and a chat answer, whole or as chunks, becomes a `response` object and
//! its stream of events (`answer`, `output`, `events`).
//!
//! Layer 0: it imports nothing above `openai`, keeps no state beyond the one answer it is assembling, and never
//! touches the network, the database or routing; storing responses and serving them is the HTTP front door's.

pub mod answer;
pub mod events;
pub mod input;
pub mod output;
pub mod request;
pub mod tools;

/// Why a request cannot be served as asked: the `code` and `message` of a 400 `invalid_request_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The OpenAI `error.code`.
    pub code: &'static str,
    /// What was wrong and, where there is one, what to send instead.
    pub message: String,
}

impl Refusal {
    /// A refusal with the general `invalid_request` code.
    pub fn invalid(message: impl Into<String>) -> Refusal {
        Refusal {
            code: "invalid_request",
            message: message.into(),
        }
    }
}
