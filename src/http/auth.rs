//! The unified API key: held in memory for constant-time checks, swapped atomically on rotation, and the
//! middleware that guards `/v1` and `/api`.

use std::sync::{Arc, RwLock};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{web, Error};

use super::AppState;
use crate::crypto::constant_time_eq;
use crate::error::ApiError;

/// The current unified key, shared by every worker.
#[derive(Clone)]
pub struct UnifiedKey(Arc<RwLock<Arc<str>>>);

impl UnifiedKey {
    /// Wraps the key read at startup.
    pub fn new(key: String) -> UnifiedKey {
        UnifiedKey(Arc::new(RwLock::new(Arc::from(key))))
    }

    /// Replaces the key; the old one stops working at once.
    pub fn set(&self, key: String) {
        let mut current = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Arc::from(key);
    }

    /// Whether `presented` is the current key, compared in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let current = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        constant_time_eq(presented, current.as_bytes())
    }
}

/// Rejects requests without `Authorization: Bearer <unified key>` with an OpenAI-shaped 401.
pub async fn require_unified_key(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .map(|v| v.as_bytes())
        .and_then(|v| {
            v.strip_prefix(b"Bearer ")
                .or_else(|| v.strip_prefix(b"bearer "))
        })
        .map(<[u8]>::trim_ascii);
    let allowed = match (presented, req.app_data::<web::Data<AppState>>()) {
        (Some(token), Some(state)) => state.unified_key.matches(token),
        _ => false,
    };
    if !allowed {
        return Err(ApiError::invalid_api_key().into());
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_replaces_the_key() {
        let key = UnifiedKey::new("freellmapi-old".into());
        assert!(key.matches(b"freellmapi-old"));
        key.set("freellmapi-new".into());
        assert!(!key.matches(b"freellmapi-old"));
        assert!(key.matches(b"freellmapi-new"));
        assert!(!key.matches(b"freellmapi-ne"));
    }
}
