//! The write side and the log: commands, import, rebuild, time travel.

use std::time::{Duration, Instant};

use anyhow::Context;
use coinfold_projections::models::portfolios::Portfolios;
use coinfold_projections::projection::rebuild::rebuild_log;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::report::{Figure, Latencies, number};
use crate::{Bench, record_trade, seed};

const IMPORT: &str = "mutation($p: ID!, $csv: String!) { \
    importTrades(portfolioId: $p, format: GENERIC, csv: $csv) { imported receipt { events } } }";

/// A table shaped like `events` without the log's trigger: what a raw ceiling writes.
async fn raw_events_table(pool: &PgPool, name: &str) -> anyhow::Result<()> {
    sqlx::query(&format!("DROP TABLE IF EXISTS {name}"))
        .execute(pool)
        .await?;
    sqlx::query(&format!(
        "CREATE TABLE {name} (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
         sequence bigint NOT NULL, event_type text NOT NULL, event_version text NOT NULL, \
         payload jsonb NOT NULL, metadata jsonb NOT NULL, \
         PRIMARY KEY (aggregate_type, aggregate_id, sequence))"
    ))
    .execute(pool)
    .await?;
    Ok(())
}

/// Concurrent `recordTrade` mutations over HTTP against single-row INSERTs of rows
/// shaped like the events they store, at the same concurrency, for the same time.
pub async fn commands(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let concurrency = bench.sizes.command_concurrency;
    let run_for = Duration::from_secs(bench.sizes.command_seconds);
    let mut portfolios = Vec::new();
    for worker in 0..concurrency {
        portfolios.push(bench.create_portfolio(&format!("commands {worker}")).await);
    }
    let url = bench.app.url("/graphql");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for portfolio in portfolios {
        let (http, url, token) = (
            bench.app.http.clone(),
            url.clone(),
            bench.session.token.clone(),
        );
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let start = time::macros::datetime!(2025-01-01 00:00 UTC);
            let mut n = 0i64;
            while started.elapsed() < run_for {
                n += 1;
                let trade = json!({
                    "side": "BUY", "coin": "BTC", "quantity": "0.01",
                    "price": (60_000 + n % 1000).to_string(),
                    "executedAt": (start + time::Duration::seconds(n)).format(&Rfc3339)?,
                });
                latencies.push(record_trade(&http, &url, &token, &portfolio, trade).await?);
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let latencies = Latencies::new(latencies);
    let rate = latencies.len() as f64 / elapsed;

    // The ceiling: the same number of writers, each INSERTing one event-shaped row per
    // transaction (a real TradeRecorded payload and metadata), durable as the store is.
    let (payload, metadata): (Value, Value) = sqlx::query_as(
        "SELECT payload, metadata FROM events WHERE event_type = 'TradeRecorded' LIMIT 1",
    )
    .fetch_one(&bench.pool)
    .await?;
    raw_events_table(&bench.pool, "bench_inserts").await?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (pool, payload, metadata) = (bench.pool.clone(), payload.clone(), metadata.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let id = uuid::Uuid::now_v7().to_string();
            let mut sequence = 0i64;
            while started.elapsed() < run_for {
                sequence += 1;
                let sent = Instant::now();
                sqlx::query(
                    "INSERT INTO bench_inserts VALUES ('Portfolio', $1, $2, 'TradeRecorded', '1.0', $3, $4)",
                )
                .bind(&id)
                .bind(sequence)
                .bind(&payload)
                .bind(&metadata)
                .execute(&pool)
                .await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut raw = Vec::new();
    while let Some(done) = tasks.join_next().await {
        raw.extend(done??);
    }
    let raw_elapsed = started.elapsed().as_secs_f64();
    let raw = Latencies::new(raw);
    let raw_rate = raw.len() as f64 / raw_elapsed;
    Ok(vec![
        Figure::new(
            "commands",
            format!("recordTrade over HTTP, {concurrency} at once"),
            rate,
            "commands/s",
        )
        .ceiling("single-row INSERT", raw_rate)
        .detail("coinfold", latencies.summary())
        .detail("INSERT", raw.summary()),
    ])
}

/// `n` trades in the generic CSV format from `first` on, one a second: three buys to a
/// sell of part of what is held, over five coins. Always sellable, so an import of it
/// is accepted whole.
pub fn trades_csv(n: usize, first: usize) -> String {
    const COINS: [(&str, i64); 5] = [
        ("BTC", 60_000),
        ("ETH", 3_000),
        ("SOL", 150),
        ("ADA", 1),
        ("DOGE", 1),
    ];
    let start = time::macros::datetime!(2024-01-01 00:00 UTC);
    let mut csv = String::with_capacity(n * 64 + 64);
    csv.push_str("executed_at,side,coin,quantity,price,quote,fee,external_id,note\n");
    for i in first..first + n {
        let (coin, base) = COINS[i % COINS.len()];
        let round = i / COINS.len();
        // Per coin: buy 1, buy 1, buy 1, sell 2 — holdings only grow.
        let (side, quantity) = if round % 4 == 3 {
            ("sell", "2")
        } else {
            ("buy", "1")
        };
        let price = base + (i as i64 % 97);
        let at = (start + time::Duration::seconds(i as i64))
            .format(&Rfc3339)
            .unwrap();
        csv.push_str(&format!(
            "{at},{side},{coin},{quantity},{price},,0.5,bench-{i},\n"
        ));
    }
    csv
}

/// One `importTrades` of `trades` trades against a COPY of the rows it stored.
pub async fn import(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let trades = bench.sizes.import_trades;
    let portfolio = bench.create_portfolio("import").await;
    let csv = trades_csv(trades, 0);
    let started = Instant::now();
    let data = bench
        .graphql(IMPORT, json!({ "p": portfolio, "csv": csv }))
        .await?;
    let elapsed = started.elapsed().as_secs_f64();
    let events = data["importTrades"]["receipt"]["events"]
        .as_u64()
        .context("importTrades answered no event count")?;
    anyhow::ensure!(events as usize == trades, "imported {events} of {trades}");

    // The ceiling: the same rows, COPY'd into a table of the same shape.
    let uuid: uuid::Uuid = portfolio.parse()?;
    let mut conn = bench.pool.acquire().await?;
    let mut out = conn
        .copy_out_raw(&format!(
            "COPY (SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
             FROM events WHERE aggregate_type = 'Portfolio' AND aggregate_id = '{uuid}' AND event_type = 'TradeRecorded') TO STDOUT"
        ))
        .await?;
    let mut rows = Vec::new();
    while let Some(chunk) = out.next().await {
        rows.extend_from_slice(&chunk?);
    }
    drop(out);
    raw_events_table(&bench.pool, "bench_copy").await?;
    let started = Instant::now();
    let mut copy = conn.copy_in_raw("COPY bench_copy FROM STDIN").await?;
    copy.send(rows.as_slice()).await?;
    let copied = copy.finish().await?;
    let raw_elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(copied == events, "COPY wrote {copied} rows of {events}");
    Ok(vec![
        Figure::new(
            "import",
            format!("importTrades of {} trades (one CSV)", number(trades as f64)),
            events as f64 / elapsed,
            "events/s",
        )
        .ceiling("COPY of the same rows", copied as f64 / raw_elapsed)
        .detail("coinfold", format!("{elapsed:.2} s"))
        .detail(
            "COPY",
            format!("{raw_elapsed:.2} s, {} MB", rows.len() / 1_000_000),
        ),
    ])
}

/// The portfolios projection rebuilt over a log of `rebuild_events` events, against
/// reading the same log with COPY TO.
pub async fn rebuild(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let wanted = bench.sizes.rebuild_events as i64;
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&bench.pool)
        .await?;
    if held < wanted {
        let seeding = Instant::now();
        let written = seed::seed_events(&bench.pool, (wanted - held) as usize, 8).await;
        eprintln!(
            "   seeded {} events in {:.1} s",
            number(written as f64),
            seeding.elapsed().as_secs_f64()
        );
    }
    sqlx::query("VACUUM ANALYZE events")
        .execute(&bench.pool)
        .await?;
    let (total, portfolio_events): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE aggregate_type = 'Portfolio') FROM events",
    )
    .fetch_one(&bench.pool)
    .await?;

    // The ceiling first: the whole log in position order, as COPY TO reads it.
    let mut conn = bench.pool.acquire().await?;
    let started = Instant::now();
    let mut out = conn
        .copy_out_raw("COPY (SELECT * FROM events ORDER BY global_position) TO STDOUT")
        .await?;
    let (mut bytes, mut rows) = (0usize, 0usize);
    while let Some(chunk) = out.next().await {
        let chunk = chunk?;
        bytes += chunk.len();
        rows += chunk.iter().filter(|b| **b == b'\n').count();
    }
    drop(out);
    drop(conn);
    let raw_elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(rows as i64 == total, "COPY TO read {rows} rows of {total}");

    let batch = bench.app.settings.projections.batch_size;
    let mut last = Instant::now();
    let report = rebuild_log(&bench.pool, &Portfolios, batch, &mut |p| {
        if last.elapsed() > Duration::from_secs(10) {
            last = Instant::now();
            eprintln!(
                "   rebuild: {} of {} events",
                number(p.applied as f64),
                number(p.total as f64)
            );
        }
    })
    .await?;
    let elapsed = report.elapsed.as_secs_f64();
    Ok(vec![
        Figure::new(
            "rebuild",
            format!("portfolios projection over {} events", number(total as f64)),
            report.applied as f64 / elapsed,
            "events/s",
        )
        .ceiling("COPY TO of the log", rows as f64 / raw_elapsed)
        .detail(
            "coinfold",
            format!(
                "{elapsed:.1} s, {} Portfolio events",
                number(portfolio_events as f64)
            ),
        )
        .detail(
            "COPY TO",
            format!("{raw_elapsed:.1} s, {} MB", bytes / 1_000_000),
        ),
    ])
}

/// A new portfolio of `trades` trades, imported in `chunks` commands; its id and the
/// time after each command (every event of a chunk is recorded before it).
pub async fn portfolio_with_trades(
    bench: &Bench,
    name: &str,
    trades: usize,
    chunks: usize,
) -> anyhow::Result<(String, Vec<OffsetDateTime>)> {
    let portfolio = bench.create_portfolio(name).await;
    let per_chunk = trades.div_ceil(chunks.max(1));
    let mut times = Vec::new();
    let mut first = 0;
    while first < trades {
        let n = per_chunk.min(trades - first);
        bench
            .graphql(
                IMPORT,
                json!({ "p": portfolio, "csv": trades_csv(n, first) }),
            )
            .await?;
        times.push(OffsetDateTime::now_utc());
        first += n;
        // Recorded times a few milliseconds apart, so each chunk is its own past.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok((portfolio, times))
}

/// `portfolio(id, asOf)` on a portfolio of `timetravel_trades` events at past moments
/// spread over its history, against SELECTing the same events.
pub async fn time_travel(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let trades = bench.sizes.timetravel_trades;
    let (portfolio, times) = portfolio_with_trades(bench, "time travel", trades, 20).await?;
    let requests = bench.sizes.timetravel_requests;
    let mut rng = seed::Rng::new(17);
    let moments: Vec<OffsetDateTime> = (0..requests)
        .map(|_| times[rng.below(times.len() as u64) as usize])
        .collect();
    let query = "query($id: ID!, $at: DateTime!) { portfolio(id: $id, asOf: $at) { \
                 version summary { usd { value costBasis realizedGain unrealizedGain } } } }";
    let mut latencies = Vec::new();
    for at in &moments {
        let variables = json!({ "id": portfolio, "at": at.format(&Rfc3339)? });
        let started = Instant::now();
        let data = bench.graphql(query, variables).await?;
        latencies.push(started.elapsed());
        anyhow::ensure!(
            data["portfolio"]["version"].as_i64().unwrap_or(0) > 1,
            "no past: {data}"
        );
    }
    let coinfold = Latencies::new(latencies);

    let mut raw = Vec::new();
    for at in &moments {
        let started = Instant::now();
        let rows: Vec<(Value,)> = sqlx::query_as(
            "SELECT payload FROM events WHERE aggregate_type = 'Portfolio' AND aggregate_id = $1 \
               AND sequence <= (SELECT max(sequence) FROM events WHERE aggregate_type = 'Portfolio' \
                 AND aggregate_id = $1 AND (metadata->>'recorded_at')::timestamptz <= $2) \
             ORDER BY sequence",
        )
        .bind(&portfolio)
        .bind(at)
        .fetch_all(&bench.pool)
        .await?;
        raw.push(started.elapsed());
        anyhow::ensure!(!rows.is_empty(), "no events as of {at}");
    }
    let raw = Latencies::new(raw);
    Ok(vec![
        Figure::new(
            "timetravel",
            format!(
                "portfolio(id, asOf) p95, {} events",
                number(trades as f64 + 1.0)
            ),
            coinfold.ms(95.0),
            "ms",
        )
        .lower_is_better()
        .ceiling("SELECT of the same events", raw.ms(95.0))
        .detail("coinfold", coinfold.summary())
        .detail("SELECT", raw.summary()),
    ])
}
