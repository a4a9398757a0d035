//! Group commit for strict refresh-token rotations on PostgreSQL.
//!
//! A rotation is one small statement, and PostgreSQL spends most of its time per statement
//! (the round trip, executor start-up, the commit and its WAL flush), not per row: about
//! 540 µs of server CPU for a rotation alone, about 120 µs each for 16 in one statement
//! (docs/benchmarks.md). So rotations that arrive together are performed together: one
//! statement, one transaction, one round trip. Nothing waits for a batch to fill: a rotation
//! that finds a batch slot free goes at once, alone; those that arrive while every slot is
//! busy queue up and go together in the next batch, so batches grow only under load. Each
//! rotation keeps its own checks and its own compare-and-set, and no caller hears back before
//! the transaction holding its rotation has committed.
//!
//! The batcher runs on its own thread, with its own runtime and connections, so it depends
//! on no caller's runtime (actix runs one per worker thread; tests one per test).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{RefreshRotation, RotationAttempt, StoreError, StoreResult, rows};

/// Rotations waiting to be batched beyond this make callers wait to enqueue.
const QUEUE: usize = 4096;
/// The most rotations in one statement.
const MAX_BATCH: usize = 64;
/// Batches running at once, each on its own connection: two keep the database busy while
/// the next batch gathers.
const IN_FLIGHT: u32 = 2;

/// The batch statement's plan is prepared once and reused (a generic plan), and must stay
/// right however small the tables were when it was made: left to its statistics, PostgreSQL
/// plans a fresh database's tiny tables with sequential scans, and keeps that plan while the
/// tables grow (until autovacuum next analyses them), each statement then reading a whole
/// table. The batcher's own connections, which run nothing else, rule out the paths that
/// are cheap only on small tables, so the statement's lookups go through primary keys at any
/// size (`postgres::rotate_refresh_tokens`).
const PLANNER_SETTINGS: &str = "SET enable_seqscan = off; SET enable_bitmapscan = off; \
     SET enable_hashjoin = off; SET enable_mergejoin = off";

/// One strict rotation, owned so it can wait in the queue.
pub(super) struct Rotation {
    pub token_hash: String,
    pub successor_hash: String,
    pub client_id: String,
    pub now_ms: i64,
    /// `i64::MIN` when the client has no idle timeout.
    pub idle_cutoff_ms: i64,
}

impl From<&RefreshRotation<'_>> for Rotation {
    fn from(r: &RefreshRotation<'_>) -> Self {
        Self {
            token_hash: r.token_hash.to_string(),
            successor_hash: r.successor_hash.to_string(),
            client_id: r.client_id.to_string(),
            now_ms: rows::ms(r.now),
            idle_cutoff_ms: r.idle_cutoff.map_or(i64::MIN, rows::ms),
        }
    }
}

type Answer = StoreResult<Option<RotationAttempt>>;

struct Job {
    rotation: Rotation,
    reply: oneshot::Sender<Answer>,
}

#[derive(Debug, Clone)]
pub(super) struct RotationBatcher {
    jobs: mpsc::Sender<Job>,
}

impl RotationBatcher {
    /// Starts the batcher's thread; it opens its connections (at most `IN_FLIGHT`) as needed
    /// and stops when the last handle is dropped, after finishing the batches it holds.
    pub fn start(
        pool_options: sqlx::pool::PoolOptions<sqlx::Postgres>,
        connect: PgConnectOptions,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("idp-rotations".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let pool = pool_options
                        .max_connections(IN_FLIGHT)
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                sqlx::raw_sql(PLANNER_SETTINGS).execute(conn).await.map(|_| ())
                            })
                        })
                        .connect_lazy_with(connect);
                    run(&pool, queue).await;
                    pool.close().await;
                })
            })?;
        Ok(Self { jobs })
    }

    pub async fn rotate(&self, rotation: Rotation) -> Answer {
        let stopped = || StoreError::Unavailable("the refresh rotation batcher has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { rotation, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Takes a batch slot, then everything queued (up to `MAX_BATCH`), and performs it.
async fn run(pool: &sqlx::PgPool, mut queue: mpsc::Receiver<Job>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT as usize));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let Some(first) = queue.recv().await else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(job) = queue.try_recv()
        {
            batch.push(job);
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            perform(&pool, batch).await;
            drop(slot);
        });
    }
    // Let the batches in flight answer their callers before the runtime stops.
    let _ = slots.acquire_many(IN_FLIGHT).await;
}

/// One statement per set of distinct tokens: the same token presented twice at once goes in
/// the next statement, where it finds the token rotated, exactly as if each had its own.
async fn perform(pool: &sqlx::PgPool, mut jobs: Vec<Job>) {
    metrics::histogram!("idp_refresh_rotation_batch_size").record(jobs.len() as f64);
    while !jobs.is_empty() {
        let mut seen = HashSet::new();
        let (now, later): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|job| seen.insert(job.rotation.token_hash.clone()));
        execute(pool, now).await;
        jobs = later;
    }
}

async fn execute(pool: &sqlx::PgPool, jobs: Vec<Job>) {
    let rotations: Vec<&Rotation> = jobs.iter().map(|job| &job.rotation).collect();
    match super::postgres::rotate_refresh_tokens(pool, &rotations).await {
        Ok(found) => {
            let mut by_hash: HashMap<String, rows::RotationRow> = found
                .into_iter()
                .map(|row| (row.family.token_hash().to_string(), row))
                .collect();
            for job in jobs {
                let answer = by_hash.remove(&job.rotation.token_hash).map(attempt).transpose();
                let _ = job.reply.send(answer);
            }
        }
        // An unreachable database fails every rotation of the batch at once: trying each
        // alone would only make the last caller wait for one connection timeout per rotation.
        Err(StoreError::Unavailable(reason)) => {
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::Unavailable(reason.clone())));
            }
        }
        Err(error) if jobs.len() == 1 => {
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.reply.send(Err(error));
            }
        }
        // The statement failed as a whole, so nothing of it was written: each rotation is
        // tried alone, and one bad rotation (or a deadlock with another batch holding the
        // same tokens) fails only itself.
        Err(_) => {
            for job in jobs {
                let answer = super::postgres::rotate_refresh_tokens(pool, &[&job.rotation])
                    .await
                    .and_then(|found| found.into_iter().next().map(attempt).transpose());
                let _ = job.reply.send(answer);
            }
        }
    }
}

fn attempt(row: rows::RotationRow) -> StoreResult<RotationAttempt> {
    Ok(RotationAttempt {
        family: row.family.try_into()?,
        rotated: row.rotated,
    })
}
