//! First-run sign-in: on a first start the log prints a link carrying a one-time code, and the dashboard
//! exchanges that code (presented like a key, as a Bearer token) for the unified key, which it keeps for the
//! browser session as if it had been typed. The code works once and for 15 minutes; the request guard checks it,
//! with failed attempts counted like wrong keys. It must never issue a second code or widen what the key opens.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::crypto::{constant_time_eq, random_hex};

/// How long a sign-in link works.
pub const SIGN_IN_TTL: Duration = Duration::from_secs(15 * 60);

/// The one-time sign-in code, while there is one.
#[derive(Debug, Default)]
pub struct SignIn {
    pending: Mutex<Option<(String, Instant)>>,
}

impl SignIn {
    /// A sign-in holding a fresh code that works once within `ttl`; answers it with the code.
    pub fn issue(ttl: Duration) -> (SignIn, String) {
        let code = random_hex(16);
        let pending = Mutex::new(Some((code.clone(), Instant::now() + ttl)));
        (SignIn { pending }, code)
    }

    /// Whether `presented` is the code and still valid; a code that matches is used up.
    pub fn redeem(&self, presented: &[u8]) -> bool {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some((code, expires)) = pending.as_ref() else {
            return false;
        };
        if Instant::now() >= *expires {
            *pending = None;
            return false;
        }
        let matches = constant_time_eq(presented, code.as_bytes());
        if matches {
            *pending = None;
        }
        matches
    }
}

/// `POST /api/signin`: reached only with a valid code (the guard redeems it); answers the unified key.
pub(super) async fn exchange(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"token": &*state.unified_key.current()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once_and_only_before_it_expires() {
        let (signin, code) = SignIn::issue(SIGN_IN_TTL);
        assert_eq!(code.len(), 32);
        assert!(!signin.redeem(b"wrong"));
        assert!(signin.redeem(code.as_bytes()));
        assert!(!signin.redeem(code.as_bytes()), "used up");
        let (expired, code) = SignIn::issue(Duration::ZERO);
        assert!(!expired.redeem(code.as_bytes()));
        assert!(!SignIn::default().redeem(b""), "no code, no sign-in");
    }
}
