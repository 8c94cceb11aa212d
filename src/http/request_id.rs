//! `X-Request-Id` on every answer: the caller's id when it sent a sane one (so a reverse proxy's or client's id
//! follows the request through), otherwise one generated here. Handlers find it in the request's extensions and
//! put it in their log lines, so an operator can go from a client's error to the gateway's log.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;

/// The header read and written.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest caller-supplied id kept; longer ones are replaced, as are ids with characters outside visible ASCII.
const MAX_LEN: usize = 128;

/// One request's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The caller's id when it is 1–128 visible ASCII characters.
    fn from_caller(value: &HeaderValue) -> Option<RequestId> {
        let bytes = value.as_bytes();
        let sane = !bytes.is_empty()
            && bytes.len() <= MAX_LEN
            && bytes.iter().all(|b| b.is_ascii_graphic());
        sane.then(|| RequestId(Arc::from(String::from_utf8_lossy(bytes).as_ref())))
    }

    /// A fresh id: a random per-process prefix and a counter, so ids never repeat within a run and rarely across
    /// runs, without a system call per request.
    fn generate() -> RequestId {
        static PREFIX: OnceLock<u64> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(|| OsRng.next_u64());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        RequestId(Arc::from(format!("{prefix:016x}{n:08x}")))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Tags the request with its id and the answer with the `X-Request-Id` header, error answers included.
pub async fn tag(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(RequestId::from_caller)
        .unwrap_or_else(RequestId::generate);
    req.extensions_mut().insert(id.clone());
    // Route and handler errors arrive here as responses; only a failure inside actix itself is an `Err`, and that
    // one is answered without the header.
    let mut res = next.call(req).await?.map_into_boxed_body();
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(X_REQUEST_ID, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_caller_ids_are_kept_and_others_replaced() {
        let kept = RequestId::from_caller(&HeaderValue::from_static("req-42_abc.DEF"));
        assert_eq!(kept.unwrap().as_str(), "req-42_abc.DEF");
        for bad in ["", "has space", &"x".repeat(129)] {
            assert!(
                RequestId::from_caller(&HeaderValue::from_str(bad).unwrap()).is_none(),
                "{bad:?}"
            );
        }
        let non_ascii = HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap();
        assert!(RequestId::from_caller(&non_ascii).is_none());
    }

    #[test]
    fn generated_ids_are_distinct_hex() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 24);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
