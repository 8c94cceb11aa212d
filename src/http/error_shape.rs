//! Which shape an error answer takes on a path: Anthropic's `{"type":"error","error":{"type","message"}}` under
//! the Anthropic front door (`/v1/messages`), so its clients read every error there (the guard's 401s and 429s,
//! body limits, bad JSON, routing failures) as they expect; OpenAI's everywhere else, untouched. Which errors
//! exist and their statuses and headers stay `crate::error`'s; this only picks the body. It must not look at
//! successful answers.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;

use crate::anthropic::error::ErrorBody;
use crate::error::ApiError;

/// Whether `path` (as the router matches it) belongs to the Anthropic front door.
pub fn is_anthropic(path: &str) -> bool {
    path == "/v1/messages" || path.starts_with("/v1/messages/")
}

/// `res` with its error answer, if it is one, in Anthropic's shape: same status and headers, Anthropic's body.
pub fn reshape(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let Some(error) = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
    else {
        return res;
    };
    let anthropic = error.response_with(ErrorBody::new(error.status.as_u16(), &error.message));
    res.into_response(anthropic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;
    use actix_web::test::TestRequest;
    use actix_web::HttpResponse;

    fn reshaped(res: HttpResponse) -> (u16, Option<String>, serde_json::Value) {
        let req = TestRequest::default().to_http_request();
        let res = reshape(ServiceResponse::new(req, res)).into_parts().1;
        let retry = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = res.status().as_u16();
        let body = res.into_body().try_into_bytes().unwrap_or_default();
        (
            status,
            retry,
            serde_json::from_slice(&body).unwrap_or_default(),
        )
    }

    #[test]
    fn only_the_anthropic_door_is_anthropic() {
        assert!(is_anthropic("/v1/messages"));
        assert!(is_anthropic("/v1/messages/count_tokens"));
        assert!(!is_anthropic("/v1/messagesx"));
        assert!(!is_anthropic("/v1/chat/completions"));
    }

    #[test]
    fn errors_keep_status_and_headers_and_take_anthropics_body() {
        let limited = HttpResponse::from_error(ApiError::rate_limited(7, "all cooling"));
        assert_eq!(
            reshaped(limited),
            (
                429,
                Some("7".to_owned()),
                serde_json::json!({"type": "error", "error": {"type": "rate_limit_error", "message": "all cooling"}})
            )
        );
        let (status, _, body) = reshaped(HttpResponse::from_error(ApiError::no_healthy_keys("x")));
        assert_eq!(
            (status, &body["error"]["type"]),
            (503, &serde_json::json!("overloaded_error"))
        );
        let ok = reshaped(HttpResponse::Ok().json(serde_json::json!({"a": 1})));
        assert_eq!(
            ok,
            (200, None, serde_json::json!({"a": 1})),
            "answers pass untouched"
        );
    }
}
