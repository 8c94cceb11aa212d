//! Responses kept for `GET /v1/responses/{id}` and `previous_response_id`, without a database write on any
//! request's path: a response is put in a bounded in-memory map the moment it is complete (so a client that
//! continues it right away finds it) and handed to the [`ResponseWriter`], which writes batches to SQLite every
//! 200 ms, keeps them across database hiccups (bounded), prunes rows past `LOG_RETENTION_DAYS` and writes what is
//! pending at shutdown. Reads look in memory first, then in the database. It never interprets a response's JSON.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix::prelude::*;

use crate::store::responses::{self, StoredResponse};
use crate::store::{Db, StoreError};
use crate::timefmt::now_unix_ms;

/// How often kept responses are written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// How often rows past the retention are removed.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// Most responses waiting to be written while the database fails; the oldest go first.
const MAX_PENDING: usize = 10_000;
/// Most responses kept in memory.
const MAX_RECENT: usize = 1024;
/// Most bytes of responses kept in memory.
const MAX_RECENT_BYTES: usize = 32 * 1024 * 1024;

/// The most recently kept responses, oldest first, within [`MAX_RECENT`] and [`MAX_RECENT_BYTES`] (the newest
/// one always stays, however large).
#[derive(Debug, Default)]
struct Recent {
    by_id: HashMap<String, Arc<StoredResponse>>,
    order: VecDeque<String>,
    bytes: usize,
}

impl Recent {
    fn insert(&mut self, response: Arc<StoredResponse>) {
        self.remove(&response.id);
        self.bytes += response.size();
        self.order.push_back(response.id.clone());
        self.by_id.insert(response.id.clone(), response);
        while self.order.len() > 1
            && (self.order.len() > MAX_RECENT || self.bytes > MAX_RECENT_BYTES)
        {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(id) = self.order.pop_front() {
            if let Some(gone) = self.by_id.remove(&id) {
                self.bytes -= gone.size();
            }
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        let Some(gone) = self.by_id.remove(id) else {
            return false;
        };
        self.bytes -= gone.size();
        self.order.retain(|kept| kept != id);
        true
    }

    fn get(&self, id: &str) -> Option<Arc<StoredResponse>> {
        self.by_id.get(id).cloned()
    }

    /// Drops responses made before `ms`.
    fn prune_before(&mut self, ms: i64) {
        while let Some(oldest) = self.order.front().and_then(|id| self.by_id.get(id)) {
            if oldest.created_ms >= ms {
                break;
            }
            self.pop_oldest();
        }
    }
}

type Shared = Arc<Mutex<Recent>>;

fn lock(recent: &Shared) -> MutexGuard<'_, Recent> {
    // A panic while holding the lock leaves a consistent map (every change is one step): keep using it.
    recent.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a `previous_response_id` leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conversation {
    /// The response and every response it continues, oldest first.
    Found(Vec<Arc<StoredResponse>>),
    /// No response has that id (never made, not stored, deleted or expired).
    Unknown,
    /// The response is kept but an earlier one it continues (this id) is not any more.
    Broken(String),
}

/// Kept responses: the handle handlers share.
#[derive(Clone)]
pub struct ResponseStore {
    recent: Shared,
    writer: Addr<ResponseWriter>,
    db: Db,
}

impl ResponseStore {
    /// Starts the writer (inside an actix System) for `db`, pruning responses older than `retention`.
    pub fn start(db: Db, retention: Duration) -> ResponseStore {
        let recent = Shared::default();
        let writer = ResponseWriter {
            db: db.clone(),
            retention,
            recent: recent.clone(),
            pending: VecDeque::new(),
            dropped: 0,
        }
        .start();
        ResponseStore { recent, writer, db }
    }

    /// Keeps `response`: at once in memory, and in the database soon after.
    pub fn keep(&self, response: StoredResponse) {
        let response = Arc::new(response);
        lock(&self.recent).insert(response.clone());
        self.writer.do_send(Persist(response));
    }

    /// The response `id`, if it is kept.
    pub async fn get(&self, id: &str) -> Result<Option<Arc<StoredResponse>>, StoreError> {
        if let Some(found) = lock(&self.recent).get(id) {
            return Ok(Some(found));
        }
        let id = id.to_owned();
        let row = self.db.run(move |conn| responses::get(conn, &id)).await?;
        Ok(row.map(Arc::new))
    }

    /// The conversation the response `id` ends: followed back through memory, then the database.
    pub async fn conversation(&self, id: &str) -> Result<Conversation, StoreError> {
        let mut newest_first = Vec::new();
        let mut next = Some(id.to_owned());
        {
            let recent = lock(&self.recent);
            while let Some(found) = next.as_deref().and_then(|id| recent.get(id)) {
                next = found.previous_id.clone();
                newest_first.push(found);
            }
        }
        if let Some(missing) = next {
            let from = missing.clone();
            let rows = self
                .db
                .run(move |conn| responses::chain(conn, &from))
                .await?;
            if rows.is_empty() {
                return Ok(if newest_first.is_empty() {
                    Conversation::Unknown
                } else {
                    Conversation::Broken(missing)
                });
            }
            newest_first.extend(rows.into_iter().map(Arc::new));
        }
        if let Some(missing) = newest_first.last().and_then(|r| r.previous_id.clone()) {
            return Ok(Conversation::Broken(missing));
        }
        newest_first.reverse();
        Ok(Conversation::Found(newest_first))
    }

    /// Deletes the response `id` from memory and the database; whether there was one.
    pub async fn forget(&self, id: &str) -> Result<bool, StoreError> {
        let in_memory = lock(&self.recent).remove(id);
        let stored = self
            .writer
            .send(Forget(id.to_owned()))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        Ok(in_memory || stored)
    }

    /// Writes everything pending now (at shutdown).
    pub async fn flush(&self) {
        if let Err(e) = self.writer.send(FlushResponses).await {
            log::warn!("could not flush kept responses: {e}");
        }
    }
}

/// Writes kept responses to the database in the background. Its database calls run one at a time (the actor
/// waits on each), so a delete never overtakes the write of the response it deletes.
pub struct ResponseWriter {
    db: Db,
    retention: Duration,
    recent: Shared,
    pending: VecDeque<Arc<StoredResponse>>,
    dropped: u64,
}

impl ResponseWriter {
    fn write_pending(&mut self, ctx: &mut Context<Self>) {
        if self.pending.is_empty() {
            return;
        }
        let batch: Vec<Arc<StoredResponse>> = self.pending.drain(..).collect();
        let rows: Vec<StoredResponse> = batch.iter().map(|r| (**r).clone()).collect();
        let db = self.db.clone();
        let write = async move {
            db.run(move |conn| responses::insert_batch(conn, &rows))
                .await
        };
        ctx.wait(
            write
                .into_actor(self)
                .map(move |result, writer, _| match result {
                    Ok(()) if writer.dropped > 0 => {
                        log::warn!(
                        "kept responses are written again; {} were dropped while they could not be",
                        writer.dropped
                    );
                        writer.dropped = 0;
                    }
                    Ok(()) => {}
                    Err(e) => {
                        log::warn!("could not write kept responses, will retry: {e}");
                        for response in batch.into_iter().rev() {
                            writer.queue_front(response);
                        }
                    }
                }),
        );
    }

    fn queue_front(&mut self, response: Arc<StoredResponse>) {
        if self.pending.len() < MAX_PENDING {
            self.pending.push_front(response);
        } else {
            self.dropped += 1;
        }
    }

    fn prune(&mut self, ctx: &mut Context<Self>) {
        let keep_ms = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let before = now_unix_ms().saturating_sub(keep_ms);
        lock(&self.recent).prune_before(before);
        let db = self.db.clone();
        let prune = async move {
            db.run(move |conn| responses::prune_before(conn, before))
                .await
        };
        ctx.wait(prune.into_actor(self).map(|result, _, _| match result {
            Ok(0) => {}
            Ok(n) => log::info!("pruned {n} kept responses past the retention"),
            Err(e) => log::warn!("could not prune kept responses: {e}"),
        }));
    }
}

impl Actor for ResponseWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(FLUSH_INTERVAL, |writer, ctx| writer.write_pending(ctx));
        ctx.run_interval(PRUNE_INTERVAL, |writer, ctx| writer.prune(ctx));
    }
}

/// Writes one response soon.
#[derive(Message)]
#[rtype(result = "()")]
struct Persist(Arc<StoredResponse>);

impl Handler<Persist> for ResponseWriter {
    type Result = ();

    fn handle(&mut self, msg: Persist, _: &mut Context<Self>) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            if self.dropped == 0 {
                log::warn!(
                    "kept-response backlog full; dropping the oldest until they can be written"
                );
            }
            self.dropped += 1;
        }
        self.pending.push_back(msg.0);
    }
}

/// Deletes one response, pending or written; answers whether there was one.
#[derive(Message)]
#[rtype(result = "Result<bool, StoreError>")]
struct Forget(String);

impl Handler<Forget> for ResponseWriter {
    type Result = AtomicResponse<Self, Result<bool, StoreError>>;

    fn handle(&mut self, msg: Forget, _: &mut Context<Self>) -> Self::Result {
        let before = self.pending.len();
        self.pending.retain(|r| r.id != msg.0);
        let was_pending = self.pending.len() < before;
        let db = self.db.clone();
        let delete = async move {
            let deleted = db.run(move |conn| responses::delete(conn, &msg.0)).await?;
            Ok(deleted || was_pending)
        };
        AtomicResponse::new(Box::pin(delete.into_actor(self)))
    }
}

/// Writes everything pending now.
#[derive(Message)]
#[rtype(result = "()")]
struct FlushResponses;

impl Handler<FlushResponses> for ResponseWriter {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: FlushResponses, _: &mut Context<Self>) -> Self::Result {
        let rows: Vec<StoredResponse> = self.pending.drain(..).map(|r| (*r).clone()).collect();
        let db = self.db.clone();
        let flush = async move {
            if rows.is_empty() {
                return;
            }
            if let Err(e) = db
                .run(move |conn| responses::insert_batch(conn, &rows))
                .await
            {
                log::warn!("could not write kept responses at shutdown: {e}");
            }
        };
        AtomicResponse::new(Box::pin(flush.into_actor(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    fn response(id: &str, previous: Option<&str>, bytes: usize) -> StoredResponse {
        StoredResponse {
            id: id.into(),
            created_ms: now_unix_ms(),
            previous_id: previous.map(str::to_owned),
            input: "[]".into(),
            response: "x".repeat(bytes),
        }
    }

    #[test]
    fn memory_keeps_the_newest_within_its_bounds() {
        let mut recent = Recent::default();
        for i in 0..MAX_RECENT + 5 {
            recent.insert(Arc::new(response(&format!("r{i}"), None, 10)));
        }
        assert_eq!(recent.by_id.len(), MAX_RECENT);
        assert!(recent.get("r4").is_none() && recent.get("r5").is_some());
        recent.insert(Arc::new(response("big", None, MAX_RECENT_BYTES)));
        assert_eq!(
            recent.order.iter().collect::<Vec<_>>(),
            ["big"],
            "the newest stays, however large"
        );
        assert!(recent.remove("big") && !recent.remove("big"));
        assert_eq!((recent.bytes, recent.order.len()), (0, 0));
        let mut old = response("old", None, 1);
        old.created_ms = 5;
        recent.insert(Arc::new(old));
        recent.insert(Arc::new(response("new", None, 1)));
        recent.prune_before(6);
        assert!(recent.get("old").is_none() && recent.get("new").is_some());
    }

    #[actix_rt::test]
    async fn conversations_are_followed_through_memory_and_the_database() {
        let file = TempDb::new();
        let db = Db::start(file.path.clone(), 2).unwrap();
        let store = ResponseStore::start(db.clone(), Duration::from_secs(86_400));
        store.keep(response("a", None, 1));
        store.keep(response("b", Some("a"), 1));
        store.flush().await;
        lock(&store.recent).remove("a");
        store.keep(response("c", Some("b"), 1));
        let ids = |c: Conversation| match c {
            Conversation::Found(rows) => rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(ids(store.conversation("c").await.unwrap()), ["a", "b", "c"]);
        lock(&store.recent).remove("b");
        assert_eq!(ids(store.conversation("c").await.unwrap()), ["a", "b", "c"]);
        assert_eq!(
            store.conversation("zz").await.unwrap(),
            Conversation::Unknown
        );
        assert!(
            store.get("a").await.unwrap().is_some(),
            "read from the database"
        );

        assert!(store.forget("c").await.unwrap(), "forgotten while pending");
        assert!(!store.forget("c").await.unwrap());
        assert!(store.get("c").await.unwrap().is_none());
        assert!(store.forget("a").await.unwrap());
        assert_eq!(
            store.conversation("b").await.unwrap(),
            Conversation::Broken("a".into())
        );
        store.flush().await;
        let c = db.run(|conn| responses::get(conn, "c")).await.unwrap();
        assert_eq!(c, None, "a forgotten response is never written");
    }
}
