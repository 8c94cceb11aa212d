//! The request log, written off the request path: handlers push a record onto their worker's [`WorkerLog`] (no
//! message), whose LogBatcher hands the records to the RequestLogger every 100 ms; that writes them every 200 ms
//! through the `Db` actor, keeps them across database hiccups (bounded), prunes old rows, and flushes everything
//! on shutdown.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;

use crate::metrics::RequestMetrics;
use crate::request_record::RequestRecord;
use crate::store::requests::{self, LogEntry};
use crate::store::Db;
use crate::timefmt::now_unix_ms;

/// How often buffered records are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// A flush starts early once this many records wait.
const FLUSH_AT: usize = 512;
/// Most records kept while the database is failing; the oldest go first.
const MAX_PENDING: usize = 50_000;
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

fn clamp(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl From<RequestRecord> for LogEntry {
    fn from(r: RequestRecord) -> Self {
        LogEntry {
            ts: r.ts_ms,
            requested_model: r.requested_model,
            platform: r.platform.map(str::to_owned),
            model: r.model.as_deref().map(str::to_owned),
            status: i32::from(r.status),
            latency_ms: clamp(r.latency_ms),
            prompt_tokens: clamp(r.prompt_tokens),
            completion_tokens: clamp(r.completion_tokens),
            attempts: clamp(r.attempts),
            stream: r.stream,
            error: r.error,
            attempt_log: (!r.attempt_log.is_empty())
                .then(|| serde_json::to_string(&r.attempt_log).ok())
                .flatten(),
            client: r.client,
            cached: r.cached,
        }
    }
}

/// Batches request records into the database.
pub struct RequestLogger {
    db: Db,
    retention: Duration,
    pending: VecDeque<LogEntry>,
    writing: bool,
    dropped: u64,
    metrics: RequestMetrics,
}

impl RequestLogger {
    /// A logger writing through `db` that prunes rows older than `retention`.
    pub fn new(db: Db, retention: Duration) -> RequestLogger {
        RequestLogger {
            db,
            retention,
            pending: VecDeque::new(),
            writing: false,
            dropped: 0,
            metrics: RequestMetrics::default(),
        }
    }

    fn write_pending(&mut self, ctx: &mut Context<Self>) {
        if self.writing || self.pending.is_empty() {
            return;
        }
        self.writing = true;
        let batch: Vec<LogEntry> = self.pending.drain(..).collect();
        let db = self.db.clone();
        let write = async move {
            db.run(move |conn| {
                Ok(match requests::insert_batch(conn, &batch) {
                    Ok(()) => None,
                    Err(e) => Some((e, batch)),
                })
            })
            .await
        };
        ctx.spawn(write.into_actor(self).map(|result, logger, _| {
            logger.writing = false;
            match result {
                Ok(None) if logger.dropped > 0 => {
                    log::warn!(
                        "the request log is written again; {} records were dropped while it could not be",
                        logger.dropped
                    );
                    logger.dropped = 0;
                }
                Ok(None) => {}
                Ok(Some((e, batch))) => {
                    log::warn!("could not write the request log, will retry: {e}");
                    for row in batch.into_iter().rev() {
                        if logger.pending.len() < MAX_PENDING {
                            logger.pending.push_front(row);
                        } else {
                            logger.dropped += 1;
                        }
                    }
                }
                Err(e) => log::warn!("request log batch lost, the database did not answer: {e}"),
            }
        }));
    }
}

impl Actor for RequestLogger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(FLUSH_INTERVAL, |logger, ctx| logger.write_pending(ctx));
        ctx.run_interval(PRUNE_INTERVAL, |logger, ctx| {
            let db = logger.db.clone();
            let keep_ms = i64::try_from(logger.retention.as_millis()).unwrap_or(i64::MAX);
            let prune = async move {
                db.run(move |conn| {
                    requests::prune_before(conn, now_unix_ms().saturating_sub(keep_ms))
                })
                .await
            };
            ctx.spawn(prune.into_actor(logger).map(|result, _, _| match result {
                Ok(0) => {}
                Ok(n) => log::info!("pruned {n} request log rows past the retention"),
                Err(e) => log::warn!("could not prune the request log: {e}"),
            }));
        });
    }
}

/// Records one request.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LogRequest(pub RequestRecord);

impl Handler<LogRequest> for RequestLogger {
    type Result = ();

    fn handle(&mut self, msg: LogRequest, ctx: &mut Context<Self>) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            if self.dropped == 0 {
                log::warn!(
                    "request log backlog full; dropping the oldest records until it can be written"
                );
            }
            self.dropped += 1;
        }
        self.metrics.observe(&msg.0);
        self.pending.push_back(msg.0.into());
        if self.pending.len() >= FLUSH_AT {
            self.write_pending(ctx);
        }
    }
}

/// Records many requests at once (a worker's batch).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LogBatch(pub Vec<RequestRecord>);

impl Handler<LogBatch> for RequestLogger {
    type Result = ();

    fn handle(&mut self, msg: LogBatch, ctx: &mut Context<Self>) {
        for record in msg.0 {
            self.handle(LogRequest(record), ctx);
        }
    }
}

/// Renders the request counters in Prometheus text format, for `GET /metrics`.
#[derive(Message)]
#[rtype(result = "String")]
pub struct RenderMetrics;

impl Handler<RenderMetrics> for RequestLogger {
    type Result = String;

    fn handle(&mut self, _: RenderMetrics, _: &mut Context<Self>) -> String {
        let mut out = String::with_capacity(4096);
        self.metrics.render(&mut out);
        out
    }
}

/// How often a worker hands its records to the RequestLogger.
const BATCH_EVERY: Duration = Duration::from_millis(100);
/// A worker hands its records over early once this many wait.
const BATCH_AT: usize = 256;

/// One HTTP worker's request records on their way to the RequestLogger. Logging a request is a push onto the
/// worker's own list, with no message and no wake-up; the list goes to the RequestLogger as one batch once
/// [`BATCH_AT`] records wait, or when its LogBatcher's interval comes. Lives on its worker's thread.
pub struct WorkerLog {
    batch: Rc<RefCell<Vec<RequestRecord>>>,
    logger: Addr<RequestLogger>,
}

impl WorkerLog {
    /// A log feeding `logger`, with its LogBatcher started on the current (worker's) arbiter; the batcher
    /// stops once this log is gone and its last records are handed over.
    pub fn start(logger: Addr<RequestLogger>) -> WorkerLog {
        let batch = Rc::new(RefCell::new(Vec::with_capacity(BATCH_AT)));
        LogBatcher {
            batch: batch.clone(),
            logger: logger.clone(),
        }
        .start();
        WorkerLog { batch, logger }
    }

    /// Logs one request.
    pub fn record(&self, record: RequestRecord) {
        let full = {
            let mut batch = self.batch.borrow_mut();
            batch.push(record);
            batch.len() >= BATCH_AT
        };
        if full {
            hand_over(&self.batch, &self.logger);
        }
    }
}

/// Sends what `batch` holds to `logger` as one message.
fn hand_over(batch: &RefCell<Vec<RequestRecord>>, logger: &Addr<RequestLogger>) {
    let mut batch = batch.borrow_mut();
    if !batch.is_empty() {
        let records = std::mem::replace(&mut *batch, Vec::with_capacity(BATCH_AT));
        logger.do_send(LogBatch(records));
    }
}

/// Hands a [`WorkerLog`]'s records to the RequestLogger every [`BATCH_EVERY`]; stops after the hand-over that
/// follows its log's end (it then holds the only reference to the records).
struct LogBatcher {
    batch: Rc<RefCell<Vec<RequestRecord>>>,
    logger: Addr<RequestLogger>,
}

impl Actor for LogBatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(BATCH_EVERY, |batcher, ctx| {
            hand_over(&batcher.batch, &batcher.logger);
            if Rc::strong_count(&batcher.batch) == 1 {
                ctx.stop();
            }
        });
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        hand_over(&self.batch, &self.logger);
        Running::Stop
    }
}

/// Writes everything pending now (at shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

impl Handler<Flush> for RequestLogger {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        let batch: Vec<LogEntry> = self.pending.drain(..).collect();
        let db = self.db.clone();
        Box::pin(
            async move {
                if batch.is_empty() {
                    return;
                }
                if let Err(e) = db
                    .run(move |conn| requests::insert_batch(conn, &batch))
                    .await
                {
                    log::warn!("could not flush the request log: {e}");
                }
            }
            .into_actor(self),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::TempDb;

    fn record(i: u32) -> RequestRecord {
        RequestRecord {
            ts_ms: now_unix_ms(),
            requested_model: "auto".into(),
            platform: Some("groq"),
            model: Some("m".into()),
            status: 200,
            latency_ms: i,
            prompt_tokens: 1,
            completion_tokens: 1,
            attempts: 1,
            stream: false,
            error: Some("x".repeat(500)),
            attempt_log: vec![],
            client: None,
            cached: false,
        }
    }

    async fn set_max_pages(db: &Db, pages: Option<i64>) {
        db.run(move |conn| {
            let pages = match pages {
                Some(p) => p,
                None => diesel::RunQueryDsl::load::<PageCount>(
                    diesel::sql_query("PRAGMA page_count"),
                    conn,
                )?
                .first()
                .map_or(1, |c| c.page_count),
            };
            diesel::RunQueryDsl::execute(
                diesel::sql_query(format!("PRAGMA max_page_count = {pages}")),
                conn,
            )?;
            Ok(())
        })
        .await
        .unwrap();
    }

    #[derive(diesel::QueryableByName)]
    struct PageCount {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        page_count: i64,
    }

    #[actix_rt::test]
    async fn a_worker_log_hands_its_records_over_when_full_on_its_interval_and_when_it_goes() {
        let file = TempDb::new();
        drop(file.conn());
        let db = Db::start(file.path.clone(), 1).unwrap();
        let logger = RequestLogger::new(db.clone(), Duration::from_secs(86_400)).start();
        let written = || async {
            let db = db.clone();
            actix_rt::time::sleep(FLUSH_INTERVAL + Duration::from_millis(300)).await;
            db.run(|c| requests::recent(c, 10_000)).await.unwrap().len()
        };
        let log = WorkerLog::start(logger.clone());

        // A full batch goes at once; the one record after it waits for the interval.
        for i in 0..=u32::try_from(BATCH_AT).unwrap() {
            log.record(record(i));
        }
        assert_eq!(
            log.batch.borrow().len(),
            1,
            "the full batch was handed over"
        );
        assert_eq!(
            written().await,
            BATCH_AT + 1,
            "the interval handed over the rest"
        );

        // Records still waiting when the worker's log goes are handed over before its batcher stops.
        log.record(record(1));
        log.record(record(2));
        drop(log);
        assert_eq!(written().await, BATCH_AT + 3);
    }

    #[actix_rt::test]
    async fn a_full_disk_delays_the_log_and_writing_resumes_by_itself() {
        let file = TempDb::new();
        drop(file.conn());
        let db = Db::start(file.path.clone(), 1).unwrap();
        set_max_pages(&db, None).await;
        let logger = RequestLogger::new(db.clone(), Duration::from_secs(86_400)).start();
        for i in 0..200 {
            logger.send(LogRequest(record(i))).await.unwrap();
        }
        actix_rt::time::sleep(FLUSH_INTERVAL + Duration::from_millis(300)).await;
        let written = db.run(|c| requests::recent(c, 1000)).await.unwrap();
        assert!(
            written.is_empty(),
            "the full database took {} rows",
            written.len()
        );
        let batch: Vec<LogEntry> = (0..200).map(|i| record(i).into()).collect();
        let full = db
            .run(move |c| requests::insert_batch(c, &batch))
            .await
            .unwrap_err();
        assert!(
            full.to_string()
                .contains("disk holding the database is full"),
            "{full}"
        );

        set_max_pages(&db, Some(1_000_000)).await;
        actix_rt::time::sleep(FLUSH_INTERVAL + Duration::from_millis(300)).await;
        let written = db.run(|c| requests::recent(c, 1000)).await.unwrap();
        assert_eq!(
            written.len(),
            200,
            "every record kept while the disk was full"
        );
    }
}
