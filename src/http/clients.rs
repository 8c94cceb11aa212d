//! `/api/clients`: creating, listing, changing and deleting client keys. A new key is answered once and only its
//! hash is stored; every change is applied to the in-memory [`ClientKeys`] before the answer, so a deleted or
//! disabled key stops working at once. It must not hold limit or lookup logic (`client_keys`, `routing`).

use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::body::AdminBody;
use super::AppState;
use crate::client_keys::{generate_key, hash_key, Client, ClientKeys};
use crate::crypto::mask;
use crate::error::ApiError;
use crate::store::clients::{self as rows, ClientSettings};
use crate::store::StoreError;
use crate::timefmt::{iso8601_ms, now_unix_ms};

/// The longest name a client may have.
const MAX_NAME: usize = 100;
/// The most models an allowlist may name.
const MAX_MODELS: usize = 500;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_request("invalid_client", message)
}

/// A client as `GET /api/clients` shows it, with its use in the current windows.
fn shown(client: &Client, keys: &ClientKeys) -> Value {
    let limits = client.limits;
    json!({
        "id": client.id,
        "name": client.name,
        "masked": client.masked,
        "models": client.models,
        "rpm": limits.rpm,
        "rpd": limits.rpd,
        "tpm": limits.tpm,
        "tpd": limits.tpd,
        "enabled": client.enabled,
        "created_at": iso8601_ms(client.created_at),
        "used": keys.used(client.id),
    })
}

/// Applies the fields of a create or change body to `settings`; unknown fields and bad values are 400s.
fn apply(body: &[u8], settings: &mut ClientSettings) -> Result<(), ApiError> {
    let fields: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("The body must be a JSON object: {e}")))?;
    for (field, value) in fields {
        match field.as_str() {
            "name" => {
                let name = value.as_str().map(str::trim).unwrap_or_default();
                if name.is_empty() || name.chars().count() > MAX_NAME {
                    return Err(invalid(format!(
                        "'name' must be a non-empty string of at most {MAX_NAME} characters"
                    )));
                }
                settings.name = name.to_owned();
            }
            "models" => settings.models = models(&value)?,
            "rpm" => settings.rpm = limit(&field, &value)?,
            "rpd" => settings.rpd = limit(&field, &value)?,
            "tpm" => settings.tpm = limit(&field, &value)?,
            "tpd" => settings.tpd = limit(&field, &value)?,
            "enabled" => {
                settings.enabled = value
                    .as_bool()
                    .ok_or_else(|| invalid("'enabled' must be true or false"))?;
            }
            other => {
                return Err(invalid(format!(
                    "Unknown field '{other}'; a client takes name, models, rpm, rpd, tpm, tpd and enabled"
                )))
            }
        }
    }
    Ok(())
}

/// An allowlist as stored: `None` (every model) for null or an empty list.
fn models(value: &Value) -> Result<Option<String>, ApiError> {
    let bad = || {
        invalid(format!(
            "'models' must be null or a list of at most {MAX_MODELS} model ids, aliases or platform/model names"
        ))
    };
    if value.is_null() {
        return Ok(None);
    }
    let list = value.as_array().ok_or_else(bad)?;
    if list.len() > MAX_MODELS {
        return Err(bad());
    }
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        let name = item.as_str().map(str::trim).filter(|s| !s.is_empty());
        let name = name.ok_or_else(bad)?.to_owned();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok((!names.is_empty()).then(|| Value::from(names).to_string()))
}

/// A limit: null (none) or a whole number from 0 up.
fn limit(field: &str, value: &Value) -> Result<Option<i64>, ApiError> {
    if value.is_null() {
        return Ok(None);
    }
    value.as_i64().filter(|n| *n >= 0).map(Some).ok_or_else(|| {
        invalid(format!(
            "'{field}' must be null or a whole number from 0 up"
        ))
    })
}

/// A failed write: 409 when another client has the name (logs, analytics and metrics tell clients apart by it).
fn write_failed(e: StoreError, name: &str) -> ApiError {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        StoreError::Query(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            ApiError::conflict(format!(
                "A client named '{name}' exists already; choose another name."
            ))
        }
        e => ApiError::internal(e),
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::unknown_id("client_not_found", format!("no client with id {id}"))
}

/// `POST /api/clients`: 201 with the new key, shown only in this answer.
pub(super) async fn create(
    state: web::Data<AppState>,
    AdminBody(body): AdminBody,
) -> Result<HttpResponse, ApiError> {
    let mut settings = ClientSettings {
        name: String::new(),
        models: None,
        rpm: None,
        rpd: None,
        tpm: None,
        tpd: None,
        enabled: true,
    };
    apply(&body, &mut settings)?;
    if settings.name.is_empty() {
        return Err(invalid("'name' is required"));
    }
    let key = generate_key();
    let (hash, masked) = (hash_key(key.as_bytes()), mask(&key));
    let name = settings.name.clone();
    let row = state
        .db
        .run(move |conn| rows::insert(conn, &settings, &hash, &masked, now_unix_ms()))
        .await
        .map_err(|e| write_failed(e, &name))?;
    state.redactor.learn(&key);
    state.clients.put(&row);
    let mut answer = shown(&Client::from_row(&row), &state.clients);
    answer["key"] = Value::from(key);
    Ok(HttpResponse::Created().json(answer))
}

/// `GET /api/clients`: every client with its use now.
pub(super) async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = state.db.run(rows::list).await.map_err(ApiError::internal)?;
    let shown: Vec<Value> = list
        .iter()
        .map(|row| shown(&Client::from_row(row), &state.clients))
        .collect();
    Ok(HttpResponse::Ok().json(shown))
}

/// `PATCH /api/clients/{id}`: changes any of its settings; in force at once.
pub(super) async fn update(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    AdminBody(body): AdminBody,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let current = state
        .db
        .run(move |conn| rows::find(conn, id))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_found(id))?;
    let mut settings = current.settings;
    apply(&body, &mut settings)?;
    let name = settings.name.clone();
    let row = state
        .db
        .run(move |conn| rows::update(conn, id, &settings))
        .await
        .map_err(|e| write_failed(e, &name))?
        .ok_or_else(|| not_found(id))?;
    state.clients.put(&row);
    Ok(HttpResponse::Ok().json(shown(&Client::from_row(&row), &state.clients)))
}

/// `DELETE /api/clients/{id}`: 204; the key stops working at once.
pub(super) async fn delete(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    state.clients.remove(id);
    let existed = state
        .db
        .run(move |conn| rows::delete(conn, id))
        .await
        .map_err(ApiError::internal)?;
    if !existed {
        return Err(not_found(id));
    }
    Ok(HttpResponse::NoContent().finish())
}
