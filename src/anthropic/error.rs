//! Errors in Anthropic's shape, `{"type":"error","error":{"type","message"}}`: which Anthropic error type each
//! HTTP status stands for, and the body. The status itself, and which errors exist, stay the gateway's
//! (`crate::error`); this only names them the way Anthropic's SDKs and Claude Code expect.

use serde::Serialize;

/// The Anthropic error type of an answer with HTTP `status`.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        502 | 503 | 529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The `error` object of an error body or stream event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail<'a> {
    /// The Anthropic error type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What went wrong, for a person.
    pub message: &'a str,
}

/// An error body, also the data of a stream's `error` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    /// The error itself.
    pub error: Detail<'a>,
}

impl<'a> ErrorBody<'a> {
    /// The body of an answer with HTTP `status` saying `message`.
    pub fn new(status: u16, message: &'a str) -> ErrorBody<'a> {
        ErrorBody {
            kind: "error",
            error: Detail {
                kind: error_type(status),
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_map_to_anthropic_types() {
        let cases = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (408, "timeout_error"),
            (409, "invalid_request_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "overloaded_error"),
            (503, "overloaded_error"),
            (504, "timeout_error"),
            (508, "api_error"),
        ];
        for (status, kind) in cases {
            assert_eq!(error_type(status), kind, "{status}");
        }
    }

    #[test]
    fn the_body_is_anthropics() {
        assert_eq!(
            serde_json::to_value(ErrorBody::new(429, "slow down")).unwrap(),
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
        );
    }
}
