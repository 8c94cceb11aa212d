//! What went wrong with one upstream attempt, in the terms routing decides by: the kind of failure, the status
//! and the provider's reason, kept free of secrets. Below both the providers that produce failures and the routing
//! decisions that weigh them; it classifies nothing itself (`providers::classify` does).

use std::fmt;
use std::time::Duration;

use crate::redact::Redactor;

/// What went wrong with one attempt, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// 429: this (platform, model, key) is out of budget until the hint, if the provider gave one.
    RateLimited {
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
    },
    /// 402 or an exhausted long-period quota: bench the key for long.
    QuotaExhausted {
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
    },
    /// 401/403: the key is wrong or revoked.
    InvalidKey,
    /// The request itself was rejected (context length, policy, schema): no retry on this model, no cooldown.
    BadRequest,
    /// The platform does not serve this model (404): skip this (platform, model).
    ModelUnavailable,
    /// 5xx, reset, malformed answer: try the next candidate.
    Transient,
    /// No answer within the time limit.
    Timeout,
    /// A committed stream broke or went bad mid-answer: the route is unreliable right now.
    Interrupted,
    /// The upstream answered, but the gateway could not read or translate the answer (malformed JSON or events,
    /// a shape its adapter does not know): not the route's fault, so it never benches; another wire format may
    /// read the same request.
    Undecodable,
}

impl FailureKind {
    /// Short name used in logs and the request log.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::RateLimited { .. } => "rate_limited",
            FailureKind::QuotaExhausted { .. } => "quota_exhausted",
            FailureKind::InvalidKey => "invalid_key",
            FailureKind::BadRequest => "bad_request",
            FailureKind::ModelUnavailable => "model_unavailable",
            FailureKind::Transient => "upstream_error",
            FailureKind::Timeout => "timeout",
            FailureKind::Interrupted => "interrupted",
            FailureKind::Undecodable => "undecodable",
        }
    }

    /// Whether this failure says something about the (platform, model, key) it happened on, so that it counts
    /// towards benching it: a refusal of the request itself, or an answer the gateway could not read, does not.
    pub fn blames_route(self) -> bool {
        !matches!(self, FailureKind::BadRequest | FailureKind::Undecodable)
    }

    /// Whether this failure says something about the key itself (wrong, revoked, out of quota), which its status
    /// and the dashboard show.
    pub fn implicates_key(self) -> bool {
        matches!(
            self,
            FailureKind::InvalidKey
                | FailureKind::RateLimited { .. }
                | FailureKind::QuotaExhausted { .. }
        )
    }
}

/// One failed attempt: its kind, the upstream status (if any answer came) and the provider's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What routing should do about it.
    pub kind: FailureKind,
    /// Upstream HTTP status, when the upstream answered.
    pub status: Option<u16>,
    /// The provider's reason (its error message), shortened; never contains key material.
    pub message: String,
}

impl Failure {
    /// The failure as it may be kept and shown: every piece of a secret in the provider's message masked (known
    /// secrets, and `also`, the ones the attempt sent), then the message shortened. Masking comes first, so a cut
    /// never leaves part of a key behind, and a provider that echoes a key never puts it into answers, key
    /// status, the request log, the server log or the database.
    pub fn sanitized(mut self, redactor: &Redactor, also: &[String]) -> Failure {
        self.message = shorten(redactor.redact(&self.message, also).trim());
        self
    }

    /// Whether the upstream rejected the request for not fitting the model's context window (so only a model
    /// with a larger window can serve it).
    pub fn exceeds_context(&self) -> bool {
        if self.kind != FailureKind::BadRequest {
            return false;
        }
        if self.status == Some(413) {
            return true;
        }
        let message = self.message.to_ascii_lowercase();
        CONTEXT_OVERFLOW_PHRASES
            .iter()
            .any(|phrase| message.contains(phrase))
    }

    /// A failure without an upstream status (connect error, timeout, broken stream).
    pub fn transport(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            status: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{s} {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// The longest provider reason kept, in characters (after masking).
pub const MAX_MESSAGE_CHARS: usize = 300;

/// How providers word a prompt that does not fit the model's context window (lower-case).
const CONTEXT_OVERFLOW_PHRASES: &[&str] = &[
    "context length",
    "context_length",
    "context window",
    "maximum context",
    "prompt is too long",
    "input is too long",
    "too many input tokens",
    "input token count",
    "reduce the length",
];

fn shorten(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((i, _)) => format!("{}…", &message[..i]),
        None => message.to_owned(),
    }
}
