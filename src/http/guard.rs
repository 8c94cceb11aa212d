//! The middleware every request passes: a request that looped back through this gateway is refused first, then
//! the browser-origin policy (admin API same-origin only, `/v1` open to the origins in `CORS_ALLOWED_ORIGINS`),
//! then the unified key on every route that is not public; last, an error answer on the Anthropic front door
//! takes Anthropic's shape (`error_shape.rs`). Every decision reads the path as the router matches it
//! (percent-decoded), so no spelling of a path reaches a route its rules do not cover.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpResponse};

use super::{auth, error_shape, routes, AppState};
use crate::client_keys::Caller;
use crate::error::ApiError;
use crate::hops;

/// Response headers a browser app may read on `/v1` answers.
const EXPOSED_HEADERS: &str = "x-routed-via, x-fallback-attempts, retry-after, x-request-id";
/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Applies the origin policy and the unified-key check, then calls the route; an error answer, whoever made it,
/// takes the shape of the path's front door.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let anthropic = error_shape::is_anthropic(req.match_info().as_str());
    let res = screen(req, next).await?;
    Ok(if anthropic {
        error_shape::reshape(res)
    } else {
        res
    })
}

/// The origin policy and the unified-key check in front of the route.
async fn screen(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::internal("application state missing").into());
    };
    // The path as the router matches it (percent-decoded), never the raw one: `/%61pi/keys` is `/api/keys`.
    if !state.hops.admits(req.headers().get(hops::HEADER)) {
        return Ok(req.error_response(ApiError::loop_detected()));
    }
    let path = req.match_info().as_str();
    let api = routes::is_api(path);
    let admin = path == "/api" || path.starts_with("/api/");
    if admin && is_cross_origin(req.headers()) {
        let refusal = ApiError::cross_origin(
            "The admin API only answers the dashboard's own origin; call it without an Origin header \
             (curl, scripts) or from the dashboard itself.",
        );
        return Ok(req.error_response(refusal));
    }
    let allowed_origin = if api {
        allowed_origin(req.headers(), &state.config.cors_allowed_origins)
    } else {
        None
    };
    if api && is_preflight(&req) {
        return Ok(match allowed_origin {
            Some(origin) => {
                let res = preflight(origin, req.headers());
                req.into_response(res)
            }
            None => req.error_response(ApiError::cross_origin(
                "This origin may not call the API from a browser; add it to CORS_ALLOWED_ORIGINS.",
            )),
        });
    }
    let access = routes::access(req.method(), req.match_info().as_str());
    let mut res = if access == routes::Access::Public {
        next.call(req).await?.map_into_boxed_body()
    } else {
        let also = match access {
            routes::Access::MetricsToken => state.config.metrics_token.as_deref(),
            _ => None,
        };
        let checked = if access == routes::Access::SignInCode {
            auth::redeem_sign_in(&req, &state).map(|()| Caller::Owner)
        } else {
            auth::authenticate(&req, &state, also)
        };
        match checked {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                next.call(req).await?.map_into_boxed_body()
            }
            Err(e) => req.error_response(e),
        }
    };
    if let Some(origin) = allowed_origin {
        let headers = res.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
    Ok(res)
}

fn is_preflight(req: &ServiceRequest) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The `Access-Control-Allow-Origin` value for this request's origin, if CORS allows it.
fn allowed_origin(headers: &HeaderMap, allowed: &[String]) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    if allowed.iter().any(|a| a == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let text = origin.to_str().ok()?;
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// The answer to an allowed preflight: the methods `/v1` serves and whatever headers the browser asked for
/// (SDKs send their own `x-stainless-*` headers).
fn preflight(origin: HeaderValue, request: &HeaderMap) -> HttpResponse {
    let mut res = HttpResponse::NoContent();
    res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_METHODS,
            "GET, POST, DELETE, OPTIONS",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
        .insert_header((header::VARY, "origin"));
    if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        res.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone()));
    }
    res.finish()
}

/// Whether a browser sent this request from a page of another origin.
///
/// `Sec-Fetch-Site` decides when the browser sent it; otherwise the `Origin` header must name the host the
/// request was addressed to (`X-Forwarded-Host` behind a reverse proxy, else `Host`). Requests without either
/// header (curl, SDKs, scripts) are not browser cross-origin requests.
fn is_cross_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return site == "cross-site" || site == "same-site";
    }
    let Some(origin) = text(header::ORIGIN) else {
        return false;
    };
    let Some((_, authority)) = origin.split_once("://") else {
        return true;
    };
    let addressed = text(header::HeaderName::from_static("x-forwarded-host"))
        .and_then(|v| v.split(',').next())
        .or_else(|| text(header::HOST))
        .map(str::trim);
    !addressed.is_some_and(|host| host.eq_ignore_ascii_case(authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                header::HeaderName::from_static(k),
                HeaderValue::from_static(v),
            );
        }
        map
    }

    #[test]
    fn cross_origin_is_decided_by_fetch_metadata_then_origin() {
        assert!(!is_cross_origin(&headers(&[])));
        assert!(!is_cross_origin(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!is_cross_origin(&headers(&[("sec-fetch-site", "none")])));
        assert!(is_cross_origin(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        assert!(is_cross_origin(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        assert!(!is_cross_origin(&headers(&[
            ("origin", "http://127.0.0.1:3001"),
            ("host", "127.0.0.1:3001")
        ])));
        assert!(is_cross_origin(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:3001")
        ])));
        assert!(is_cross_origin(&headers(&[
            ("origin", "null"),
            ("host", "a")
        ])));
        assert!(!is_cross_origin(&headers(&[
            ("origin", "https://llm.example.com"),
            ("host", "127.0.0.1:3001"),
            ("x-forwarded-host", "llm.example.com")
        ])));
    }

    #[test]
    fn only_listed_origins_get_cors() {
        let allowed = vec!["https://app.example".to_owned()];
        let from = |o| headers(&[("origin", o)]);
        assert_eq!(
            allowed_origin(&from("https://app.example"), &allowed),
            Some(HeaderValue::from_static("https://app.example"))
        );
        assert_eq!(
            allowed_origin(&from("https://other.example"), &allowed),
            None
        );
        assert_eq!(allowed_origin(&headers(&[]), &allowed), None);
        assert_eq!(allowed_origin(&from("https://app.example"), &[]), None);
        assert_eq!(
            allowed_origin(&from("https://x.example"), &["*".to_owned()]),
            Some(HeaderValue::from_static("*"))
        );
    }
}
