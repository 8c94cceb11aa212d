//! `GET` and `PUT /api/aliases`: the names a client may use as `model`, each trying its targets in order. The
//! route table judges names and targets (`CheckAliases`); this only parses, stores through `Db` and reloads the
//! router. It never resolves a model itself.

use std::collections::HashSet;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::body::AdminBody;
use super::{reload, AppState};
use crate::actors::router::queries::CheckAliases;
use crate::error::ApiError;
use crate::store::aliases::{self, AliasRow};

/// One alias as the API shows and takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Alias {
    name: String,
    targets: Vec<String>,
}

impl From<AliasRow> for Alias {
    fn from(row: AliasRow) -> Alias {
        Alias {
            name: row.name,
            targets: row.targets,
        }
    }
}

/// Every alias, in order.
pub(super) async fn get_aliases(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rows = state
        .db
        .run(aliases::list)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let shown: Vec<Alias> = rows.into_iter().map(Alias::from).collect();
    Ok(HttpResponse::Ok().json(shown))
}

/// Replaces every alias; nothing changes when any entry is refused.
pub(super) async fn put_aliases(
    state: web::Data<AppState>,
    AdminBody(body): AdminBody,
) -> Result<HttpResponse, ApiError> {
    let given: Vec<Alias> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid_request(
            "invalid_aliases",
            format!("Expected [{{\"name\", \"targets\": [...]}}]: {e}"),
        )
    })?;
    let mut seen = HashSet::new();
    let rows: Vec<AliasRow> = given
        .into_iter()
        .map(|alias| AliasRow {
            name: alias.name.trim().to_owned(),
            targets: alias.targets.iter().map(|t| t.trim().to_owned()).collect(),
        })
        .collect();
    if let Some(twice) = rows.iter().find(|row| !seen.insert(row.name.clone())) {
        return Err(ApiError::invalid_request(
            "invalid_aliases",
            format!("alias '{}' appears twice", twice.name),
        ));
    }
    let check = CheckAliases(
        rows.iter()
            .map(|row| (row.name.clone(), row.targets.clone()))
            .collect(),
    );
    state
        .router
        .send(check)
        .await
        .map_err(|e| ApiError::internal(format!("router unavailable: {e}")))?
        .map_err(|why| ApiError::invalid_request("invalid_aliases", why))?;
    let stored = rows.clone();
    state
        .db
        .run(move |conn| aliases::replace(conn, &stored))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    reload(&state).await;
    let shown: Vec<Alias> = rows.into_iter().map(Alias::from).collect();
    Ok(HttpResponse::Ok().json(shown))
}
