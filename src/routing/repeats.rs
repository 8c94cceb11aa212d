//! Stopping early: when two different platforms fail one request in the same way, and that way is not theirs to
//! fix (the gateway could not read their answers, or they refused the request itself with the same words), a
//! third platform would only spend quota and time, so the request ends there with a plain account of what
//! happened. Pure: it sees failures and platform ids, never keys, budgets or IO.

use crate::failure::{Failure, FailureKind};
use crate::platform::Platform;

/// Why a request stopped before its candidates ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// What the platforms did.
    pub kind: FailureKind,
    /// The platforms that failed that way, in the order they did.
    pub platforms: Vec<Platform>,
    /// The first platform's words.
    pub message: String,
}

/// The failures seen so far in one request that could repeat the same way elsewhere.
#[derive(Debug, Default)]
pub struct Repeats {
    seen: Vec<(Platform, FailureKind, String, String)>,
}

impl Repeats {
    /// Takes in one failed attempt; answers with a [`Stop`] once a second platform failed the same way.
    pub fn observe(&mut self, platform: Platform, failure: &Failure) -> Option<Stop> {
        if !repeatable(failure) {
            return None;
        }
        let shape = normalized(&failure.message);
        let earlier = self
            .seen
            .iter()
            .find(|(p, kind, _, s)| *p != platform && *kind == failure.kind && *s == shape);
        if let Some((first, kind, message, _)) = earlier {
            return Some(Stop {
                kind: *kind,
                platforms: vec![*first, platform],
                message: message.clone(),
            });
        }
        self.seen
            .push((platform, failure.kind, failure.message.clone(), shape));
        None
    }
}

/// Failures that say nothing about the platform that produced them: an answer the gateway could not read, or a
/// refusal of the request itself (other than a context overflow, which a larger model may still serve).
fn repeatable(failure: &Failure) -> bool {
    match failure.kind {
        FailureKind::Undecodable => true,
        FailureKind::BadRequest => !failure.exceeds_context(),
        _ => false,
    }
}

/// A message with what varies between otherwise identical failures (positions, counts, ids, case, spacing)
/// taken out.
fn normalized(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for word in message.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(
            word.chars()
                .filter(|c| !c.is_ascii_digit())
                .map(|c| c.to_ascii_lowercase()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: FailureKind, message: &str) -> Failure {
        Failure {
            kind,
            status: Some(400),
            message: message.to_owned(),
        }
    }

    #[test]
    fn the_same_unreadable_answer_on_two_platforms_stops() {
        let mut repeats = Repeats::default();
        let bad = |col: u32| {
            failure(
                FailureKind::Undecodable,
                &format!(
                    "upstream answered with malformed JSON: expected value at line 1 column {col}"
                ),
            )
        };
        assert_eq!(repeats.observe(Platform::Groq, &bad(3)), None);
        assert_eq!(
            repeats.observe(Platform::Groq, &bad(3)),
            None,
            "another key of the same platform is no second opinion"
        );
        let stop = repeats.observe(Platform::Cerebras, &bad(17));
        assert_eq!(
            stop.map(|s| (s.kind, s.platforms)),
            Some((
                FailureKind::Undecodable,
                vec![Platform::Groq, Platform::Cerebras]
            ))
        );
    }

    #[test]
    fn different_failures_or_route_faults_never_stop() {
        let mut repeats = Repeats::default();
        let schema = "Invalid schema for function 'f'";
        assert_eq!(
            repeats.observe(Platform::Groq, &failure(FailureKind::BadRequest, schema)),
            None
        );
        assert_eq!(
            repeats.observe(
                Platform::Mistral,
                &failure(FailureKind::BadRequest, "tools are not supported")
            ),
            None,
            "different words: the next platform may accept it"
        );
        for kind in [FailureKind::Transient, FailureKind::Timeout] {
            assert_eq!(
                repeats.observe(Platform::Groq, &failure(kind, "boom")),
                None
            );
            assert_eq!(
                repeats.observe(Platform::Nvidia, &failure(kind, "boom")),
                None
            );
        }
        let overflow = "This model's maximum context length is 8192 tokens";
        assert_eq!(
            repeats.observe(Platform::Groq, &failure(FailureKind::BadRequest, overflow)),
            None
        );
        assert_eq!(
            repeats.observe(
                Platform::Cerebras,
                &failure(FailureKind::BadRequest, overflow)
            ),
            None,
            "a context overflow moves on to larger models"
        );
        let stop = repeats.observe(
            Platform::Sambanova,
            &failure(FailureKind::BadRequest, schema),
        );
        assert_eq!(stop.map(|s| s.message), Some(schema.to_owned()));
    }
}
