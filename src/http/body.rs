//! Request bodies: every handler that takes a body gets it through one of these extractors, read in full under a
//! size limit and a time limit, so a body too large or too slow gets the documented JSON error (never actix's
//! plain text) and never holds a connection open. Parsing is each handler's own business, never done here.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderMap, CONTENT_LENGTH};
use actix_web::{web, FromRequest, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::AppState;
use crate::config::Config;
use crate::error::ApiError;

/// Largest admin API body: keys, chain entries and settings are small; 1 MiB leaves room for a long chain.
pub const ADMIN_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The body of an API request (`/v1`), up to `MAX_BODY_BYTES`.
pub struct ApiBody(pub Bytes);

/// The body of an admin request (`/api`), up to [`ADMIN_MAX_BODY_BYTES`].
pub struct AdminBody(pub Bytes);

type BodyFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl FromRequest for ApiBody {
    type Error = ApiError;
    type Future = BodyFuture<ApiBody>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let read = extract(req, payload, |config| config.max_body_bytes);
        Box::pin(async move { read.await.map(ApiBody) })
    }
}

impl FromRequest for AdminBody {
    type Error = ApiError;
    type Future = BodyFuture<AdminBody>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let read = extract(req, payload, |_| ADMIN_MAX_BODY_BYTES);
        Box::pin(async move { read.await.map(AdminBody) })
    }
}

/// Reads the body of `req` under the limit `limit_of` picks from the configuration.
fn extract(
    req: &HttpRequest,
    payload: &mut Payload,
    limit_of: fn(&Config) -> usize,
) -> impl Future<Output = Result<Bytes, ApiError>> + 'static {
    let settings = req
        .app_data::<web::Data<AppState>>()
        .map(|state| (limit_of(&state.config), state.config.body_read_timeout));
    let declared = declared_length(req.headers());
    let payload = payload.take();
    async move {
        let (limit, within) =
            settings.ok_or_else(|| ApiError::internal("application state missing"))?;
        read(declared, payload, limit, within).await
    }
}

/// The body's length as its `Content-Length` header declares it, when it does.
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

/// Reads a whole body of at most `limit` bytes that arrives within `within`: a declared length over the limit
/// is refused before any byte is read.
async fn read<S>(
    declared: Option<usize>,
    mut payload: S,
    limit: usize,
    within: Duration,
) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::request_too_large(limit));
    }
    let collect = async {
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::invalid_request("invalid_body", format!("could not read the body: {e}"))
            })?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::request_too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    actix_rt::time::timeout(within, collect)
        .await
        .unwrap_or_else(|_| Err(ApiError::body_timeout(within)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn chunks(parts: &[&'static str]) -> impl Stream<Item = Result<Bytes, PayloadError>> + Unpin {
        stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p.as_bytes())))
                .collect::<Vec<_>>(),
        )
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[actix_rt::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let body = read(None, chunks(&["ab", "cd"]), 4, SECOND).await;
        assert_eq!(body.ok(), Some(Bytes::from_static(b"abcd")));
    }

    #[actix_rt::test]
    async fn a_body_over_the_limit_is_refused_declared_or_not() {
        let declared = read(Some(5), chunks(&[]), 4, SECOND).await.err();
        assert_eq!(declared.map(|e| e.code), Some("request_too_large"));
        let sent = read(None, chunks(&["abc", "de"]), 4, SECOND).await.err();
        assert_eq!(sent.map(|e| e.code), Some("request_too_large"));
    }

    #[actix_rt::test]
    async fn a_body_that_stops_arriving_times_out() {
        let stalled = chunks(&["ab"]).chain(stream::pending());
        let err = read(Some(10), stalled, 100, Duration::from_millis(50))
            .await
            .err();
        assert_eq!(err.map(|e| e.status.as_u16()), Some(408));
    }
}
