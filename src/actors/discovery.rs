//! Discovering a custom key's models: `GET {base_url}/models` through a ProviderActor (awc, off the database
//! thread), the key sent as a Bearer token, within [`DISCOVERY_TIMEOUT`]. Used by the admin API and the CLI before
//! the key is stored. It never logs or returns the key, and never stores anything itself.

use std::time::Duration;

use actix::prelude::*;

use super::provider::{Fetch, ProviderActor};
use crate::key_admin::CustomModel;
use crate::providers::model_list;

/// How long the server gets to list its models.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The models the server at `base_url` lists, as plain chat models; the error says why none could be listed
/// (without the key).
pub async fn discover_models(
    provider: &Addr<ProviderActor>,
    base_url: &str,
    key: &str,
) -> Result<Vec<CustomModel>, String> {
    let request = model_list::request(base_url, key)?;
    let url = request.url.clone();
    let failed =
        |why: String| format!("could not list the models of {url} ({why}); give 'models' by hand");
    let (status, body) = provider
        .send(Fetch {
            request,
            limit: DISCOVERY_TIMEOUT,
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|f| failed(f.to_string()))?;
    if !(200..300).contains(&status) {
        return Err(failed(format!("it answered HTTP {status}")));
    }
    let ids = model_list::parse(&body).map_err(failed)?;
    Ok(ids.into_iter().map(CustomModel::named).collect())
}
