//! The one error type a client can see, and its mapping to OpenAI-shaped JSON and an HTTP status.
//!
//! Every handler returns `ApiError` for failures so that the status, `type` and `code` pairs of
//! interface.md are decided here and nowhere else.

use std::fmt;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// An error answered to a client as `{"error":{"message","type","code"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the response.
    pub status: StatusCode,
    /// OpenAI `error.type`.
    pub kind: &'static str,
    /// OpenAI `error.code`.
    pub code: &'static str,
    /// Human-readable explanation; never contains key material.
    pub message: String,
    /// Seconds for the `Retry-After` header, on 429s.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 400 for a request the gateway itself rejects (bad JSON, bad fields, n > 1).
    pub fn invalid_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
    }

    /// 400 relayed from an upstream that rejected the request itself (context length, policy, schema).
    pub fn upstream_rejected(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "upstream_rejected_request",
            message,
        )
    }

    /// 401 for a missing or wrong unified key.
    pub fn invalid_api_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            "Invalid or missing API key. Send 'Authorization: Bearer <unified key>' (or 'x-api-key: <unified key>' on /v1); `freellmapi token` prints it.",
        )
    }

    /// 404 when no provider offers the requested model.
    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!("The model '{model}' is not offered by any configured provider. GET /v1/models lists what is available."),
        )
    }

    /// 404 for an admin resource that does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            message,
        )
    }

    /// 404 for something the client names by id that is not (or no longer) there; `code` says what it was.
    pub fn unknown_id(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            code,
            message,
        )
    }

    /// 409 when a resource already exists.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "conflict",
            message,
        )
    }

    /// 403 for a browser request from another origin to a route that only the dashboard's own origin may use.
    pub fn cross_origin(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "cross_origin_forbidden",
            message,
        )
    }

    /// 413 for a body over the configured limit.
    pub fn request_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("Request body exceeds the limit of {limit_bytes} bytes."),
        )
    }

    /// 408 for a request body that did not arrive in full in time; the connection is closed after it.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "request_timeout",
            format!(
                "The request body did not arrive in full within {} s (BODY_READ_TIMEOUT_SECS).",
                limit.as_secs()
            ),
        )
    }

    /// 508 for a request that already passed through this gateway: a key's base URL leads back to it.
    pub fn loop_detected() -> Self {
        Self::new(
            StatusCode::LOOP_DETECTED,
            "invalid_request_error",
            "loop_detected",
            "This request already passed through this gateway: a provider key's base URL leads back here \
             (a loop). Point that key at the upstream server itself.",
        )
    }

    /// 429 when every candidate is rate-limited or cooling down.
    pub fn rate_limited(retry_after_secs: u64, message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
            message,
        );
        e.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }

    /// 429 when a client key is past one of its own limits (`client_quota_exceeded`).
    pub fn client_quota_exceeded(retry_after_secs: u64, message: impl Into<String>) -> Self {
        let mut e = Self::rate_limited(retry_after_secs, message);
        e.code = "client_quota_exceeded";
        e
    }

    /// 403 when a client key asks for a model outside its allowlist.
    pub fn model_not_allowed(model: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "model_not_allowed",
            format!("This client key may not use the model '{model}'; the gateway's owner sets its models."),
        )
    }

    /// 502 when every attempt failed upstream.
    pub fn upstream(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "upstream_error",
            message,
        )
    }

    /// 503 when no enabled, healthy key can serve the request.
    pub fn no_healthy_keys(detail: impl fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "no_healthy_keys",
            format!("No healthy keys available {detail}"),
        )
    }

    /// 500 for a failure inside the gateway (database unavailable, actor gone). The cause goes to the server's
    /// log, not to the client, which is told only that the gateway failed and where to look.
    pub fn internal(cause: impl fmt::Display) -> Self {
        log::error!("internal error answered with 500: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            "The gateway failed to handle this request; its log has the cause.",
        )
    }

    /// The HTTP answer of this error with `body`: OpenAI's shape (`error_response`), or a front door's own. The
    /// status and headers (`Retry-After`, the closing of a connection whose body timed out) are the same in every
    /// shape.
    pub fn response_with(&self, body: impl serde::Serialize) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still come; the connection cannot carry another request.
            res.force_close();
        }
        res.json(body)
    }

    /// The JSON body, also used for in-band SSE error events.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.code}})
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.response_with(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn rate_limited_sets_retry_after_and_shape() {
        let res = ApiError::rate_limited(7, "all cooling").error_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            res.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()),
            Some(&b"7"[..])
        );
        let bytes = res.into_body().try_into_bytes().unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    }

    #[test]
    fn an_internal_cause_stays_out_of_the_answer() {
        let e = ApiError::internal("router unavailable: Mailbox has closed");
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("router"), "{}", e.message);
    }

    #[test]
    fn no_healthy_keys_message_prefix() {
        let e = ApiError::no_healthy_keys("for model 'x'");
        assert!(e.message.starts_with("No healthy keys available"));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
