//! The unified API key: held in memory for constant-time checks, swapped atomically on rotation, and the check
//! the request guard applies to every non-public route (Bearer everywhere, `x-api-key` on `/v1` too).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderName, AUTHORIZATION};
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{routes, AppState};
use crate::client_keys::Caller;
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

    /// The current key, for the dashboard's first-run sign-in (which proved a one-time code).
    pub fn current(&self) -> Arc<str> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
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

/// Limits failed authentication attempts per client address, so the unified key cannot be guessed quickly.
///
/// Once an address has failed too often it is refused outright (even with the right key) until its budget
/// refills; other addresses are unaffected.
pub struct FailedAuthLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    blocked: DashMap<IpAddr, Instant>,
}

impl FailedAuthLimiter {
    /// Allows `per_minute` failures per address; 0 disables the limit.
    pub fn new(per_minute: u32) -> FailedAuthLimiter {
        let limiter = NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        FailedAuthLimiter {
            limiter,
            blocked: DashMap::new(),
        }
    }

    /// How long `ip` must still wait, if it is blocked.
    fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let until = *self.blocked.get(&ip)?;
        let now = Instant::now();
        if until > now {
            return Some(until - now);
        }
        self.blocked.remove(&ip);
        None
    }

    /// Counts a failure; returns how long `ip` is now blocked, if this failure was one too many.
    fn record_failure(&self, ip: IpAddr) -> Option<Duration> {
        let limiter = self.limiter.as_ref()?;
        if limiter.len() > 10_000 {
            limiter.retain_recent();
            self.blocked.retain(|_, until| *until > Instant::now());
        }
        let wait = limiter
            .check_key(&ip)
            .err()?
            .wait_time_from(DefaultClock::default().now());
        let wait = wait.max(Duration::from_secs(1));
        self.blocked.insert(ip, Instant::now() + wait);
        Some(wait)
    }
}

fn too_many_failures(wait: Duration) -> ApiError {
    let secs = wait.as_secs().max(1);
    ApiError::rate_limited(
        secs,
        format!("Too many failed authentication attempts from this address; retry in {secs}s"),
    )
}

/// The client's address: the peer, or, when the peer is a trusted reverse proxy, the nearest `X-Forwarded-For`
/// entry that is not itself a trusted proxy (entries further left are whatever the client chose to send).
pub fn client_address(req: &ServiceRequest, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all(X_FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in forwarded.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return Some(ip),
            Err(_) => break,
        }
    }
    Some(peer)
}

/// The credential a request presents: its `Authorization: Bearer` token, or, on the API routes (`/v1`), its
/// `x-api-key` header, which Anthropic's SDKs and Claude Code send. One credential per request, so a request
/// cannot make two guesses.
fn presented(req: &ServiceRequest) -> Option<&[u8]> {
    let headers = req.headers();
    let bearer = headers.get(AUTHORIZATION).and_then(|v| {
        let v = v.as_bytes();
        v.strip_prefix(b"Bearer ")
            .or_else(|| v.strip_prefix(b"bearer "))
    });
    let api_key = || {
        routes::is_api(req.match_info().as_str())
            .then(|| headers.get(X_API_KEY).map(|v| v.as_bytes()))
            .flatten()
    };
    bearer.or_else(api_key).map(<[u8]>::trim_ascii)
}

/// Who is calling: the owner (the unified key, or `also_accepted` where the route takes another token), or a
/// client key, which opens only the `/v1` routes. Failures count per client address.
pub fn authenticate(
    req: &ServiceRequest,
    state: &AppState,
    also_accepted: Option<&str>,
) -> Result<Caller, ApiError> {
    let (presented, ip) = admitted(req, state)?;
    let accepted = |token: &[u8]| {
        state.unified_key.matches(token)
            || also_accepted.is_some_and(|other| constant_time_eq(token, other.as_bytes()))
    };
    if presented.is_some_and(accepted) {
        return Ok(Caller::Owner);
    }
    // A client key opens only the API routes, never the admin API, the metrics or the dashboard's data.
    let client = presented
        .filter(|_| routes::is_api(req.match_info().as_str()))
        .and_then(|token| state.clients.find(token));
    if let Some(client) = client {
        return Ok(Caller::Client(client));
    }
    Err(refused(state, ip))
}

/// Checks a first-run sign-in's one-time code (presented like a key), counting failures like wrong keys.
pub fn redeem_sign_in(req: &ServiceRequest, state: &AppState) -> Result<(), ApiError> {
    let (presented, ip) = admitted(req, state)?;
    if presented.is_some_and(|code| state.signin.redeem(code)) {
        return Ok(());
    }
    Err(refused(state, ip))
}

/// The presented credential and the client's address, unless that address is blocked after too many failures.
fn admitted<'r>(
    req: &'r ServiceRequest,
    state: &AppState,
) -> Result<(Option<&'r [u8]>, Option<IpAddr>), ApiError> {
    let ip = client_address(req, &state.config.trusted_proxies);
    if let Some(wait) = ip.and_then(|ip| state.auth_failures.blocked_for(ip)) {
        return Err(too_many_failures(wait));
    }
    Ok((presented(req), ip))
}

/// The answer to a wrong credential, counted against the client's address.
fn refused(state: &AppState, ip: Option<IpAddr>) -> ApiError {
    match ip.and_then(|ip| state.auth_failures.record_failure(ip)) {
        Some(wait) => too_many_failures(wait),
        None => ApiError::invalid_api_key(),
    }
}

/// The header reverse proxies append the client's address to.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// The header Anthropic's clients send their key in.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn from(peer: &str, forwarded: &[&str]) -> ServiceRequest {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        for value in forwarded {
            req = req.append_header(("x-forwarded-for", *value));
        }
        req.to_srv_request()
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            client_address(&from("203.0.113.9:5000", &["1.2.3.4"]), &proxy),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(&from("127.0.0.1:5000", &["198.51.100.7"]), &proxy),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(
                &from("127.0.0.1:5000", &["6.6.6.6, 198.51.100.7", "10.0.0.2"]),
                &proxy
            ),
            ip("198.51.100.7"),
            "the nearest untrusted hop, not what the client wrote further left"
        );
        assert_eq!(
            client_address(&from("127.0.0.1:5000", &[]), &proxy),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_address(&from("127.0.0.1:5000", &["garbage"]), &proxy),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_address(&from("127.0.0.1:5000", &["198.51.100.7"]), &[]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn failures_block_an_address_after_the_limit() {
        let limiter = FailedAuthLimiter::new(2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert_eq!(limiter.record_failure(a), None);
        assert_eq!(limiter.record_failure(a), None);
        assert!(limiter.record_failure(a).is_some());
        assert!(limiter.blocked_for(a).is_some());
        assert_eq!(
            limiter.blocked_for(b),
            None,
            "other addresses are unaffected"
        );
        let off = FailedAuthLimiter::new(0);
        for _ in 0..100 {
            assert_eq!(off.record_failure(a), None);
        }
    }

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
