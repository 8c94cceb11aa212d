//! Persistence: SQLite through diesel, migrations embedded in the binary, one file per table with its queries.
//!
//! Async code never calls diesel directly: it sends a closure to the `Db` actor, which runs on a SyncArbiter
//! (its own threads) with a timeout, so a slow disk never blocks an arbiter or hangs a request.
//!
//! Queries keep their SQL fixed, so diesel's statement cache prepares each once per connection: a single row
//! is read with `get_result` on a unique key, never with `first`, whose bound `LIMIT ?` makes SQLite prepare
//! the statement again on every run (clippy.toml forbids it).

pub mod aliases;
pub mod budgets;
pub mod chain;
pub mod clients;
pub mod lock;
pub mod private;
pub mod provider_keys;
pub mod requests;
pub mod responses;
pub mod rollup;
pub mod schema;
pub mod settings;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::prelude::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The connection type every query takes.
pub type Conn = SqliteConnection;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");
/// How long a database call may take before the caller gives up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A database failure, with what to do about it.
#[derive(Debug)]
pub enum StoreError {
    /// The file or its directory cannot be opened or created.
    Open(String),
    /// The file is not a usable freellmapi database.
    Corrupt(String),
    /// A query failed.
    Query(diesel::result::Error),
    /// The database actor did not answer in time or is gone.
    Unavailable(String),
    /// Stored data could not be interpreted.
    Invalid(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Open(m) | StoreError::Corrupt(m) | StoreError::Invalid(m) => f.write_str(m),
            StoreError::Query(e) => {
                let text = e.to_string();
                if text.contains("database or disk is full") {
                    write!(
                        f,
                        "the disk holding the database is full ({text}); free some space: requests are still \
                         served and writes resume by themselves"
                    )
                } else if text.contains("readonly database") {
                    write!(
                        f,
                        "the database is read-only ({text}); make the database file and its directory writable \
                         by this user"
                    )
                } else {
                    write!(f, "database error: {text}")
                }
            }
            StoreError::Unavailable(m) => write!(f, "database unavailable: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Runs `body` in a write transaction and reports the body's own error.
///
/// The transaction takes the write lock at BEGIN (IMMEDIATE), so two writers queue on the busy timeout instead
/// of one failing with "database is locked" when it upgrades from reading; inside another transaction it is a
/// savepoint. When SQLite has already rolled the
/// transaction back itself (a full disk, an I/O error), diesel's ROLLBACK fails and would replace the cause
/// with "not in a transaction"; the cause is what an operator needs to read.
pub fn transaction<T>(
    conn: &mut Conn,
    body: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    use diesel::connection::{Connection, TransactionManager};
    let mut cause = None;
    let run = |conn: &mut Conn| {
        body(conn).map_err(|e| {
            let text = e.to_string();
            cause = Some(e);
            StoreError::Invalid(text)
        })
    };
    let nested = !matches!(
        <Conn as Connection>::TransactionManager::transaction_manager_status_mut(conn)
            .transaction_depth(),
        Ok(None)
    );
    let result = if nested {
        conn.transaction(run)
    } else {
        conn.immediate_transaction(run)
    };
    result.map_err(|e| cause.take().unwrap_or(e))
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::Query(e)
    }
}

/// Opens (creating if needed) the database, sets the pragmas and runs pending migrations.
pub fn open(path: &Path) -> Result<Conn, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private::create_dir(dir).map_err(|e| {
            StoreError::Open(format!(
                "cannot create the data directory {}: {e}. Check its permissions or set DATABASE_URL to a writable path.",
                dir.display()
            ))
        })?;
    }
    private::restrict_database(path).map_err(|e| {
        StoreError::Open(format!(
            "cannot make the database {} private to its owner: {e}. Check its permissions or set DATABASE_URL to a \
             writable path.",
            path.display()
        ))
    })?;
    let url = path
        .to_str()
        .ok_or_else(|| StoreError::Open(format!("{} is not a UTF-8 path", path.display())))?;
    let mut conn = SqliteConnection::establish(url).map_err(|e| {
        StoreError::Open(format!(
            "cannot open the database {}: {e}. Check its permissions or set DATABASE_URL to a writable path.",
            path.display()
        ))
    })?;
    let corrupt = |e: &dyn fmt::Display| {
        StoreError::Corrupt(format!(
            "{} is not a valid freellmapi database ({e}). Move it aside (or restore a backup) and start again.",
            path.display()
        ))
    };
    conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;")
        .map_err(|e| corrupt(&e))?;
    conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(|e| corrupt(&e))?;
    conn.run_pending_migrations(MIGRATIONS)
        .map_err(|e| corrupt(&e))?;
    Ok(conn)
}

/// Folds the write-ahead log into the database file, so a stopped server leaves one self-contained file.
pub fn checkpoint(path: &Path) -> Result<(), StoreError> {
    let mut conn = open(path)?;
    conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(StoreError::Query)
}

/// Owns one connection on a SyncArbiter thread.
pub struct DbActor {
    conn: Conn,
}

impl Actor for DbActor {
    type Context = SyncContext<Self>;
}

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// Runs one closure against the connection.
#[derive(Message)]
#[rtype(result = "()")]
struct RunJob(Job);

impl Handler<RunJob> for DbActor {
    type Result = ();

    fn handle(&mut self, msg: RunJob, _: &mut SyncContext<Self>) {
        (msg.0)(&mut self.conn);
    }
}

/// The handle async code uses to reach the database.
#[derive(Clone)]
pub struct Db {
    addr: Addr<DbActor>,
}

impl Db {
    /// Starts `threads` database actors, each with its own connection; must run inside an actix System.
    pub fn start(path: PathBuf, threads: usize) -> Result<Db, StoreError> {
        let mut conns = Vec::new();
        for _ in 0..threads.max(1) {
            conns.push(open(&path)?);
        }
        let conns = std::sync::Mutex::new(conns);
        let addr = SyncArbiter::start(threads.max(1), move || {
            let conn = conns.lock().ok().and_then(|mut c| c.pop());
            DbActor {
                conn: conn.unwrap_or_else(|| open_or_exit(&path)),
            }
        });
        Ok(Db { addr })
    }

    /// Runs `f` on a database thread and returns its result, or an error after a timeout.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Conn) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.addr
            .send(RunJob(job))
            .timeout(CALL_TIMEOUT)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the query was dropped".to_owned()))?
    }
}

/// A restarted database thread whose file can no longer be opened cannot serve anything: say why and stop.
fn open_or_exit(path: &Path) -> Conn {
    match open(path) {
        Ok(conn) => conn,
        Err(e) => {
            log::error!("{e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
pub(crate) mod test_db {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    static NEXT: AtomicU32 = AtomicU32::new(0);

    /// A fresh database file in the temp dir, removed on drop.
    pub struct TempDb {
        pub path: PathBuf,
    }

    impl TempDb {
        pub fn new() -> TempDb {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("freellmapi-test-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempDb {
                path: dir.join("db.sqlite"),
            }
        }

        pub fn conn(&self) -> Conn {
            open(&self.path).unwrap()
        }

        /// A configuration using this database, with `ENCRYPTION_KEY` set when given.
        pub fn config(&self, encryption_key: Option<&str>) -> crate::config::Config {
            let mut vars = std::collections::HashMap::new();
            vars.insert("DATABASE_URL".to_owned(), self.path.display().to_string());
            if let Some(k) = encryption_key {
                vars.insert("ENCRYPTION_KEY".to_owned(), k.to_owned());
            }
            crate::config::Config::from_vars(&vars).unwrap()
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_db::TempDb;
    use super::*;

    #[test]
    fn opens_and_migrates_twice() {
        let db = TempDb::new();
        drop(db.conn());
        let mut conn = db.conn();
        assert_eq!(settings::revision(&mut conn).unwrap(), 0);
    }

    #[test]
    fn garbage_file_is_reported_as_corrupt() {
        let db = TempDb::new();
        std::fs::create_dir_all(db.path.parent().unwrap()).unwrap();
        std::fs::write(
            &db.path,
            b"this is not sqlite at all, just some bytes that fill a header",
        )
        .unwrap();
        let err = open(&db.path).err().unwrap();
        assert!(
            err.to_string().contains("not a valid freellmapi database"),
            "{err}"
        );
    }

    #[actix_rt::test]
    async fn db_actor_runs_closures() {
        let tmp = TempDb::new();
        let db = Db::start(tmp.path.clone(), 2).unwrap();
        let rev = db.run(settings::bump_revision).await.unwrap();
        assert_eq!(rev, 1);
    }
}
