//! CatalogWatcher: notices edits to the `CATALOG_PATH` file without a restart. Every few seconds it compares the
//! file's modification time and length, re-reads and re-parses it off the arbiter when they change, and when it
//! parses, swaps the shared catalog, lets the chain meet catalog models it has not been offered, and has the
//! router rebuild its table. A file that does not parse is logged and the catalog in force stays. It never
//! decides routing and never touches the database but through `Db::run`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;

use super::router::{Reload, RouterActor};
use crate::catalog::{Catalog, SharedCatalog};
use crate::chain_offers;
use crate::store::Db;

/// How often the file's modification time and length are compared.
const POLL: Duration = Duration::from_secs(2);

/// What identifies one version of the file: its modification time and length (`None` while it cannot be read).
pub type Stamp = Option<(Option<SystemTime>, u64)>;

/// What a look at the file found.
enum Look {
    /// Same stamp as last time.
    Unchanged,
    /// A new version (or the file went away), with the catalog it makes or why it makes none.
    Changed(Stamp, Result<Catalog, String>),
}

/// Watches one catalog file.
pub struct CatalogWatcher {
    path: PathBuf,
    seen: Stamp,
    busy: bool,
    catalog: SharedCatalog,
    db: Db,
    router: Addr<RouterActor>,
}

impl CatalogWatcher {
    /// A watcher of `path`, whose version `seen` (stamped before it was read) is in force in `catalog`.
    pub fn new(
        path: PathBuf,
        seen: Stamp,
        catalog: SharedCatalog,
        db: Db,
        router: Addr<RouterActor>,
    ) -> Self {
        CatalogWatcher {
            path,
            seen,
            busy: false,
            catalog,
            db,
            router,
        }
    }

    fn check(&mut self) -> impl ActorFuture<Self, Output = ()> + 'static {
        self.busy = true;
        let (path, seen) = (self.path.clone(), self.seen);
        let look = async move {
            actix_rt::task::spawn_blocking(move || look(&path, seen))
                .await
                .unwrap_or(Look::Unchanged)
        };
        look.into_actor(self).then(|look, watcher, _| {
            let adopted = match look {
                Look::Unchanged => None,
                Look::Changed(stamp, parsed) => {
                    watcher.seen = stamp;
                    match parsed {
                        Ok(catalog) => Some(Arc::new(catalog)),
                        Err(e) => {
                            log::warn!("{e}; the catalog in force stays");
                            None
                        }
                    }
                }
            };
            let (db, router, shared) = (
                watcher.db.clone(),
                watcher.router.clone(),
                watcher.catalog.clone(),
            );
            let apply = async move {
                let Some(catalog) = adopted else { return };
                shared.replace(catalog.clone());
                let count = catalog.entries().len();
                match db
                    .run(move |conn| chain_offers::join_chain(conn, &catalog))
                    .await
                {
                    Ok(0) => {}
                    Ok(joined) => log::info!("{joined} new catalog models joined the chain's end"),
                    Err(e) => log::warn!("could not offer new catalog models to the chain: {e}"),
                }
                if let Err(e) = router.send(Reload).await {
                    log::warn!("could not rebuild routing on the new catalog: {e}");
                }
                log::info!("catalog reloaded: {count} models");
            };
            apply.into_actor(watcher).map(|(), watcher, _| {
                watcher.busy = false;
            })
        })
    }
}

impl Actor for CatalogWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(POLL, |watcher, ctx| {
            if !watcher.busy {
                ctx.spawn(watcher.check());
            }
        });
    }
}

/// The file's stamp now; taken before it is read at startup, so an edit made while starting is not missed.
pub fn stamp(path: &std::path::Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok(), meta.len()))
}

/// Blocking: compares the stamp and, when it changed, reads and parses the file.
fn look(path: &std::path::Path, seen: Stamp) -> Look {
    let now = stamp(path);
    if now == seen {
        return Look::Unchanged;
    }
    let parsed = Catalog::load(Some(path));
    Look::Changed(now, parsed)
}
