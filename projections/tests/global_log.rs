//! The global log reader against the real PostgreSQL: each test gets its own database
//! (`#[sqlx::test]`) with the workspace's migrations applied.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coinfold_projections::global_log::GlobalLog;
use rand::Rng;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

const WRITERS: usize = 8;
const EVENTS_PER_WRITER: usize = 12_500; // 8 × 12,500 = 100,000 committed events
const READ_LIMIT: i64 = 1_000;

async fn insert_event(
    tx: &mut Transaction<'_, Postgres>,
    aggregate_id: &str,
    sequence: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('Test', $1, $2, 'Happened', '1.0', '{}', '{}') RETURNING global_position",
    )
    .bind(aggregate_id)
    .bind(sequence)
    .fetch_one(&mut **tx)
    .await
}

async fn positions(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT global_position FROM events ORDER BY global_position")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn read_all(log: &mut GlobalLog, after: i64) -> Vec<i64> {
    log.read_after(after, READ_LIMIT)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.global_position)
        .collect()
}

/// Reads until something comes back. Transaction ids are cluster-wide, so a transaction
/// of a test running beside this one (in another database) can hold the mark back for a
/// moment; it never makes the reader return a wrong answer, only a later one.
async fn read_once_settled(log: &mut GlobalLog, after: i64) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = read_all(log, after).await;
        if !page.is_empty() || Instant::now() > deadline {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One committed transaction, as its writer saw it.
struct Committed {
    commit_order: u64,
    min_position: i64,
    max_position: i64,
}

#[sqlx::test(migrations = "../migrations")]
async fn an_open_transaction_holds_back_every_later_position(pool: PgPool) {
    let mut log = GlobalLog::new(pool.clone());

    let mut slow = pool.begin().await.unwrap();
    let first = insert_event(&mut slow, "slow", 1).await.unwrap();
    let mut fast = pool.begin().await.unwrap();
    let second = insert_event(&mut fast, "fast", 1).await.unwrap();
    fast.commit().await.unwrap();
    assert!(first < second);

    // A naive reader (position > checkpoint) sees the later event and would move past
    // `first` for good; ours must not return it while `slow` is open.
    let naive: Vec<i64> =
        sqlx::query_scalar("SELECT global_position FROM events WHERE global_position > 0")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(naive, vec![second]);
    assert_eq!(read_all(&mut log, 0).await, Vec::<i64>::new());
    assert!(log.high_water_mark().await.unwrap() < first);

    slow.commit().await.unwrap();
    assert_eq!(read_once_settled(&mut log, 0).await, vec![first, second]);
    assert_eq!(read_all(&mut log, second).await, Vec::<i64>::new());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rolled_back_position_is_passed_over(pool: PgPool) {
    let mut log = GlobalLog::new(pool.clone());

    let mut doomed = pool.begin().await.unwrap();
    let lost = insert_event(&mut doomed, "doomed", 1).await.unwrap();
    let mut kept = pool.begin().await.unwrap();
    let saved = insert_event(&mut kept, "kept", 1).await.unwrap();
    kept.commit().await.unwrap();
    assert_eq!(read_all(&mut log, 0).await, Vec::<i64>::new());

    doomed.rollback().await.unwrap();
    assert_eq!(read_once_settled(&mut log, 0).await, vec![saved]);
    assert!(lost < saved);
}

#[sqlx::test(migrations = "../migrations")]
async fn pages_follow_the_limit_and_the_position(pool: PgPool) {
    let mut tx = pool.begin().await.unwrap();
    for sequence in 1..=5 {
        insert_event(&mut tx, "paged", sequence).await.unwrap();
    }
    tx.commit().await.unwrap();
    let all = positions(&pool).await;
    let mut log = GlobalLog::new(pool);
    read_once_settled(&mut log, 0).await;

    let first_page = log.read_after(0, 2).await.unwrap();
    assert_eq!(
        first_page
            .iter()
            .map(|e| e.global_position)
            .collect::<Vec<_>>(),
        all[..2]
    );
    assert_eq!(first_page[0].aggregate_id, "paged");
    assert_eq!(first_page[0].sequence, 1);
    // Events written by one transaction share its id.
    assert_eq!(first_page[0].transaction_id, first_page[1].transaction_id);

    let rest = log.read_after(all[1], 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| e.global_position).collect::<Vec<_>>(),
        all[2..]
    );
    assert!(log.read_after(-1, 10).await.is_err());
    assert!(log.read_after(0, 0).await.is_err());
}

#[sqlx::test(migrations = "../migrations")]
async fn the_log_refuses_updates_and_deletes(pool: PgPool) {
    let mut tx = pool.begin().await.unwrap();
    insert_event(&mut tx, "immutable", 1).await.unwrap();
    tx.commit().await.unwrap();

    let update = sqlx::query("UPDATE events SET event_type = 'Rewritten'")
        .execute(&pool)
        .await;
    let delete = sqlx::query("DELETE FROM events").execute(&pool).await;
    let truncate = sqlx::query("TRUNCATE events").execute(&pool).await;
    for result in [update, delete, truncate] {
        let message = result.unwrap_err().to_string();
        assert!(message.contains("append-only"), "{message}");
    }
    assert_eq!(positions(&pool).await.len(), 1);
}

/// ≥ 8 writers hold their transactions open for random times (some roll back) while a
/// reader follows the log. The reader must see every committed event exactly once, in
/// position order, and the run must really contain late commits (a transaction
/// committing after one with higher positions), or it would prove nothing.
#[sqlx::test(migrations = "../migrations")]
async fn the_reader_sees_every_event_once_in_order_under_concurrent_writers(
    pool_options: PgPoolOptions,
    connect_options: PgConnectOptions,
) {
    let pool = pool_options
        .max_connections(WRITERS as u32 + 2)
        .connect_with(connect_options)
        .await
        .unwrap();
    let commit_counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let pool = pool.clone();
            let commit_counter = commit_counter.clone();
            tokio::spawn(async move {
                let mut committed = Vec::new();
                let mut rolled_back = 0usize;
                let mut written = 0usize;
                let mut sequence = 0i64;
                let aggregate_id = format!("writer-{writer}");
                while written < EVENTS_PER_WRITER {
                    let (batch, hold, roll_back) = {
                        let mut rng = rand::rng();
                        let batch = rng.random_range(1..=16).min(EVENTS_PER_WRITER - written);
                        // Mostly short holds, now and then a long one.
                        let hold = if rng.random_bool(0.03) {
                            Duration::from_millis(rng.random_range(10..60))
                        } else {
                            Duration::from_micros(rng.random_range(0..2_000))
                        };
                        (batch, hold, rng.random_bool(0.05))
                    };
                    let mut tx = pool.begin().await.unwrap();
                    // Durability is not what this test is about.
                    sqlx::query("SET LOCAL synchronous_commit = off")
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    let mut taken = Vec::with_capacity(batch);
                    for i in 0..batch {
                        taken.push(
                            insert_event(&mut tx, &aggregate_id, sequence + 1 + i as i64)
                                .await
                                .unwrap(),
                        );
                        if i == 0 {
                            tokio::time::sleep(hold).await;
                        }
                    }
                    if roll_back {
                        tx.rollback().await.unwrap();
                        rolled_back += batch;
                        continue;
                    }
                    tx.commit().await.unwrap();
                    sequence += batch as i64;
                    written += batch;
                    committed.push(Committed {
                        commit_order: commit_counter.fetch_add(1, Ordering::SeqCst),
                        min_position: taken[0],
                        max_position: *taken.last().unwrap(),
                    });
                }
                (committed, rolled_back)
            })
        })
        .collect();

    // Follow the log while the writers run, then until it is drained.
    let mut log = GlobalLog::new(pool.clone());
    let mut seen: Vec<i64> = Vec::with_capacity(WRITERS * EVENTS_PER_WRITER);
    let mut reads = 0usize;
    let mut after = 0;
    let mut writers = Some(writers);
    let mut transactions = Vec::new();
    let mut rolled_back = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.len() < WRITERS * EVENTS_PER_WRITER {
        assert!(
            Instant::now() < deadline,
            "gave up after {reads} reads: seen {} events, last {after}, high-water mark {}",
            seen.len(),
            log.high_water_mark().await.unwrap(),
        );
        // Once every writer is done, collect what they committed (a writer's panic
        // surfaces here).
        if writers
            .as_ref()
            .is_some_and(|w| w.iter().all(|w| w.is_finished()))
        {
            for writer in writers.take().unwrap() {
                let (committed, dropped) = writer.await.unwrap();
                transactions.extend(committed);
                rolled_back += dropped;
            }
        }
        let page = log.read_after(after, READ_LIMIT).await.unwrap();
        reads += 1;
        for event in &page {
            assert!(
                event.global_position > after,
                "position {} returned after {after}: out of order or twice",
                event.global_position
            );
            after = event.global_position;
            seen.push(after);
        }
        if page.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    if let Some(writers) = writers {
        for writer in writers {
            let (committed, dropped) = writer.await.unwrap();
            transactions.extend(committed);
            rolled_back += dropped;
        }
    }
    // Nothing more may come: the log is drained.
    assert_eq!(read_all(&mut log, after).await, Vec::<i64>::new());

    // A late commit: a transaction whose positions are below those of a transaction
    // that committed before it. These are the events a naive reader would skip.
    transactions.sort_by_key(|t| t.commit_order);
    let mut highest_committed = 0;
    let mut late_commits = 0;
    for t in &transactions {
        if t.min_position < highest_committed {
            late_commits += 1;
        }
        highest_committed = highest_committed.max(t.max_position);
    }

    let stored = positions(&pool).await;
    println!(
        "global log: writers={WRITERS} events={} transactions={} rolled_back_events={rolled_back} \
         late_commits={late_commits} reads={reads} elapsed={:.1}s",
        stored.len(),
        transactions.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(stored.len(), WRITERS * EVENTS_PER_WRITER);
    assert_eq!(
        seen, stored,
        "the reader must see every committed event once, in order"
    );
    assert!(
        late_commits > 0,
        "the run produced no late commit, so it tested nothing"
    );
    assert!(rolled_back > 0, "the run rolled nothing back");
}
