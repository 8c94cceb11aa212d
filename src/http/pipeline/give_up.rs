//! The words of a request that found no answer: the client's error when every candidate is cooling, refused or
//! failed, or when the pipeline stopped early. The decisions behind them are `routing::failover` and
//! `routing::repeats`; this only phrases them, and never decides.

use crate::catalog::ModelKind;
use crate::error::ApiError;
use crate::providers::FailureKind;
use crate::request_record::AttemptRecord;
use crate::routing::failover::GiveUp;
use crate::routing::repeats::Stop;

/// The client's answer when no candidate for `model` answered, worded from the policy's reason.
pub(super) fn gave_up(reason: GiveUp, model: &str, attempts: &[AttemptRecord]) -> ApiError {
    match reason {
        GiveUp::Cooling {
            retry_after_secs: secs,
            after_failures: true,
        } => ApiError::rate_limited(
            secs,
            format!("Every candidate for '{model}' is cooling down after upstream failures (errors or timeouts); retry in {secs}s"),
        ),
        GiveUp::Cooling {
            retry_after_secs: secs,
            ..
        }
        | GiveUp::RateLimited {
            retry_after_secs: secs,
        } => ApiError::rate_limited(
            secs,
            format!("Every candidate for '{model}' is rate-limited or cooling down; retry in {secs}s"),
        ),
        GiveUp::TooLargeForBudgets => ApiError::invalid_request(
            "request_too_large_for_budgets",
            "The request needs more tokens than any available model's token budget allows",
        ),
        GiveUp::Rejected(reason) => ApiError::upstream_rejected(reason),
        GiveUp::Failed => all_failed(attempts),
    }
}

/// The 502 that lists every attempt.
fn all_failed(attempts: &[AttemptRecord]) -> ApiError {
    let listed: Vec<String> = attempts
        .iter()
        .map(|a| {
            let status = a
                .status
                .map_or_else(|| a.outcome.to_owned(), |s| s.to_string());
            format!(
                "{}/{}: {} {}",
                a.platform,
                a.model,
                status,
                a.message.as_deref().unwrap_or_default()
            )
        })
        .collect();
    ApiError::upstream(format!(
        "All {} upstream attempts failed: {}",
        attempts.len(),
        listed.join("; ")
    ))
}

/// The 400 for a model of the other kind: an embedding model asked to chat, or a chat model asked for vectors.
pub(super) fn wrong_kind(model: &str, kind: ModelKind) -> ApiError {
    let (is, route) = match kind {
        ModelKind::Embedding => ("an embedding model", "/v1/embeddings"),
        ModelKind::Chat => ("a chat model", "/v1/chat/completions"),
    };
    ApiError::invalid_request(
        "model_type_mismatch",
        format!("The model '{model}' is {is}; send it to {route}."),
    )
}

/// The 400 when every model `model` names lacks something the request needs.
pub(super) fn not_capable(model: &str, lacked: &[&str]) -> ApiError {
    ApiError::invalid_request(
        "no_capable_model",
        format!(
            "No model that '{model}' can reach serves this request: it needs {}, which none of them has. Name a \
             model that has it, or drop what it lacks.",
            lacked.join(" and ")
        ),
    )
}

/// The answer to a request stopped because two platforms failed it the same way that is not theirs to fix.
pub(super) fn stopped_early(stop: Stop) -> ApiError {
    let platforms: Vec<&str> = stop.platforms.iter().map(|p| p.id()).collect();
    let who = platforms.join(" and ");
    if stop.kind == FailureKind::BadRequest {
        return ApiError::upstream_rejected(format!(
            "{} (refused in the same words by {who}; no further platform was tried)",
            stop.message
        ));
    }
    ApiError::upstream(format!(
        "{who} both answered in a form the gateway could not read ({}). It stopped there rather than spend more \
         quota: the same fault on two platforms points at this request's translation, not at the providers, \
         and no key was benched for it.",
        stop.message
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(
        platform: &'static str,
        status: Option<u16>,
        outcome: &'static str,
        message: &str,
    ) -> AttemptRecord {
        AttemptRecord {
            platform,
            model: "m".into(),
            key_id: crate::provider_key::KeyId(1),
            outcome,
            status,
            latency_ms: 3,
            message: Some(message.to_owned()),
            resumed_after: None,
        }
    }

    #[test]
    fn all_failed_lists_every_attempt_with_its_status_or_outcome() {
        let attempts = [
            attempt("groq", Some(500), "transient", "boom"),
            attempt("cerebras", None, "timeout", "no first byte"),
        ];
        let e = gave_up(GiveUp::Failed, "auto", &attempts);
        assert_eq!(e.status.as_u16(), 502);
        assert_eq!(
            e.message,
            "All 2 upstream attempts failed: groq/m: 500 boom; cerebras/m: timeout no first byte"
        );
    }

    #[test]
    fn cooling_after_failures_says_so_and_carries_retry_after() {
        let e = gave_up(
            GiveUp::Cooling {
                retry_after_secs: 7,
                after_failures: true,
            },
            "m1",
            &[],
        );
        assert_eq!((e.status.as_u16(), e.retry_after_secs), (429, Some(7)));
        assert!(
            e.message.contains("after upstream failures"),
            "{}",
            e.message
        );
        let e = gave_up(
            GiveUp::RateLimited {
                retry_after_secs: 3,
            },
            "m1",
            &[],
        );
        assert!(e.message.contains("rate-limited"), "{}", e.message);
    }
}
