//! The floor row of the one-hop limit: the customer's fixed HTTP crates doing nothing but the hop. An actix-web
//! server (default workers, as the gateway) relays each request body through a per-worker awc client to one
//! upstream URL and answers with the upstream's status, content type and body. No key check, routing, budget,
//! logging or metrics: what the gateway adds over this row is its own work. It must not grow features, or it
//! stops being a floor.

use std::cell::OnceCell;

use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};

thread_local! {
    /// Each worker's client (awc clients are per thread), made on the worker's first request.
    static CLIENT: OnceCell<awc::Client> = const { OnceCell::new() };
}

/// The upstream URL every request goes to.
struct Upstream(String);

async fn relay(body: web::Bytes, upstream: web::Data<Upstream>) -> HttpResponse {
    let client = CLIENT.with(|c| c.get_or_init(awc::Client::default).clone());
    let sent = client
        .post(upstream.0.as_str())
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .send_body(body)
        .await;
    let mut answer = match sent {
        Ok(answer) => answer,
        Err(e) => return HttpResponse::BadGateway().body(e.to_string()),
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let kind = answer.headers().get(CONTENT_TYPE).cloned();
    match answer.body().await {
        Ok(bytes) => {
            let mut response = HttpResponse::build(status);
            if let Some(kind) = kind {
                response.insert_header((CONTENT_TYPE, kind));
            }
            response.body(bytes)
        }
        Err(e) => HttpResponse::BadGateway().body(e.to_string()),
    }
}

/// Serves the relay on 127.0.0.1:`port` until the process is killed.
pub fn serve(port: u16, upstream: String) -> std::io::Result<()> {
    let upstream = web::Data::new(Upstream(upstream));
    actix_web::rt::System::new().block_on(
        HttpServer::new(move || {
            App::new()
                .app_data(upstream.clone())
                .default_service(web::to(relay))
        })
        .bind(("127.0.0.1", port))?
        .run(),
    )
}
