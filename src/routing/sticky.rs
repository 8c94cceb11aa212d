//! Sticky sessions: a conversation stays on the (platform, model) that served its first turn for 30 minutes
//! after its last turn. Bounded in memory; the oldest bindings go first when full.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::Value;

use crate::openai::chat::ChatRequest;
use crate::platform::Platform;

/// How long a binding outlives the conversation's last turn.
pub const TTL_MS: i64 = 30 * 60 * 1000;

/// A conversation's identity, hashed.
pub type SessionKey = u64;

/// Names the conversation: the client's id (header or body) if given, else its opening (model asked for, first
/// system and first user message), which stays the same on every later turn.
pub fn session_key(explicit: Option<&str>, request: &ChatRequest) -> SessionKey {
    let mut h = DefaultHasher::new();
    match explicit {
        Some(id) => ("explicit", id).hash(&mut h),
        None => {
            ("derived", request.model.as_str()).hash(&mut h);
            for role in ["system", "user"] {
                if let Some(m) = request.messages.iter().find(|m| m.role == role) {
                    hash_value(&m.content, &mut h);
                }
            }
        }
    }
    h.finish()
}

/// Names a request that has no conversation (embeddings): the client's id if given, else `name` (its model), so
/// such requests keep to the platform that served their model last.
pub fn named_session(explicit: Option<&str>, name: &str) -> SessionKey {
    let mut h = DefaultHasher::new();
    match explicit {
        Some(id) => ("explicit", id).hash(&mut h),
        None => ("named", name).hash(&mut h),
    }
    h.finish()
}

fn hash_value(value: &Value, h: &mut DefaultHasher) {
    match value {
        Value::String(s) => s.hash(h),
        other => other.to_string().hash(h),
    }
}

#[derive(Debug)]
struct Binding {
    platform: Platform,
    model: Arc<str>,
    expires_ms: i64,
}

/// Session → (platform, model), bounded.
#[derive(Debug)]
pub struct StickyMap {
    bindings: HashMap<SessionKey, Binding>,
    order: VecDeque<(SessionKey, i64)>,
    capacity: usize,
}

impl StickyMap {
    /// An empty map holding at most `capacity` sessions.
    pub fn new(capacity: usize) -> StickyMap {
        StickyMap {
            bindings: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// The live binding of a session.
    pub fn get(&self, session: SessionKey, now_ms: i64) -> Option<(Platform, &Arc<str>)> {
        self.bindings
            .get(&session)
            .filter(|b| b.expires_ms > now_ms)
            .map(|b| (b.platform, &b.model))
    }

    /// Binds (or re-binds) a session after a served turn, extending its life.
    pub fn bind(&mut self, session: SessionKey, platform: Platform, model: Arc<str>, now_ms: i64) {
        let expires_ms = now_ms + TTL_MS;
        self.bindings.insert(
            session,
            Binding {
                platform,
                model,
                expires_ms,
            },
        );
        self.order.push_back((session, expires_ms));
        while self.bindings.len() > self.capacity || self.order.len() > self.capacity * 2 {
            let Some((old, stamp)) = self.order.pop_front() else {
                break;
            };
            if self
                .bindings
                .get(&old)
                .is_some_and(|b| b.expires_ms == stamp)
            {
                self.bindings.remove(&old);
            }
        }
        while self
            .order
            .front()
            .is_some_and(|(_, stamp)| *stamp <= now_ms)
        {
            if let Some((old, stamp)) = self.order.pop_front() {
                if self
                    .bindings
                    .get(&old)
                    .is_some_and(|b| b.expires_ms == stamp)
                {
                    self.bindings.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> ChatRequest {
        ChatRequest::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn derived_key_is_stable_across_turns() {
        let first = req(
            r#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}"#,
        );
        let later = req(
            r#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"},{"role":"assistant","content":"yo"},{"role":"user","content":"more"}]}"#,
        );
        let other = req(r#"{"messages":[{"role":"user","content":"hello"}]}"#);
        assert_eq!(session_key(None, &first), session_key(None, &later));
        assert_ne!(session_key(None, &first), session_key(None, &other));
        assert_ne!(
            session_key(Some("a"), &first),
            session_key(Some("b"), &first)
        );
        assert_eq!(
            session_key(Some("a"), &first),
            session_key(Some("a"), &other)
        );
    }

    #[test]
    fn bindings_expire_and_refresh() {
        let mut m = StickyMap::new(10);
        m.bind(1, Platform::Groq, Arc::from("x"), 0);
        assert_eq!(m.get(1, TTL_MS - 1).map(|(p, _)| p), Some(Platform::Groq));
        assert!(m.get(1, TTL_MS).is_none());
        m.bind(1, Platform::Mistral, Arc::from("y"), TTL_MS - 1);
        assert_eq!(
            m.get(1, TTL_MS + 5).map(|(p, _)| p),
            Some(Platform::Mistral)
        );
    }

    #[test]
    fn capacity_is_bounded_oldest_first() {
        let mut m = StickyMap::new(3);
        for s in 0..5 {
            m.bind(s, Platform::Groq, Arc::from("x"), 10);
        }
        assert_eq!(m.bindings.len(), 3);
        assert!(m.get(0, 11).is_none() && m.get(1, 11).is_none());
        assert!(m.get(4, 11).is_some());
    }
}
