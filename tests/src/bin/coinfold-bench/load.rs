//! Queries under load from a separate process (wrk), against a bare axum handler that
//! answers the same JSON.

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde_json::{Value, json};

use crate::report::{Figure, number};
use crate::write::portfolio_with_trades;
use crate::{Bench, seed};

/// Connections wrk keeps open (two threads).
const CONNECTIONS: usize = 16;

const PRICE: &str = "query { price(coin: \"BTC\") { coin quote price source exchangeTime } }";
const SUMMARY: &str = "query($id: ID!) { portfolio(id: $id) { version summary { \
    usd { value costBasis realizedGain unrealizedGain } holdings { coin quantity value } } } }";

/// What wrk measured.
struct Load {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn milliseconds(text: &str) -> Option<f64> {
    let number_end = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (value, unit) = text.split_at(number_end);
    let value: f64 = value.parse().ok()?;
    Some(match unit {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => return None,
    })
}

/// Runs wrk against `url` with `body` POSTed (and `token` as the bearer) for `seconds`.
async fn wrk(url: &str, body: &str, token: Option<&str>, seconds: u64) -> anyhow::Result<Load> {
    let script = std::env::temp_dir().join(format!(
        "coinfold-bench-{}.lua",
        uuid::Uuid::new_v4().simple()
    ));
    let mut lua = format!(
        "wrk.method = \"POST\"\nwrk.body = [==[{body}]==]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
    );
    if let Some(token) = token {
        lua.push_str(&format!(
            "wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n"
        ));
    }
    std::fs::write(&script, lua)?;
    let mut command = std::process::Command::new("wrk");
    command
        .args([
            "-t2",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(url);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("cannot run wrk (apt-get install wrk; scripts/bench.sh installs it)")?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    anyhow::ensure!(
        !text.contains("Non-2xx"),
        "wrk saw error responses:\n{text}"
    );
    let field = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
    };
    let load = Load {
        requests_per_second: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no Requests/sec in wrk's output:\n{text}"))?,
        p50_ms: field("50%")
            .and_then(milliseconds)
            .with_context(|| format!("no p50:\n{text}"))?,
        p99_ms: field("99%")
            .and_then(milliseconds)
            .with_context(|| format!("no p99:\n{text}"))?,
    };
    Ok(load)
}

/// A server on a free loopback port whose POST /graphql reads the request and answers
/// `answer`; it stops with the runtime.
async fn bare_server(answer: Bytes) -> anyhow::Result<String> {
    let app = Router::new().route(
        "/graphql",
        post(move |_request: Bytes| {
            let answer = answer.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    answer,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{address}/graphql"))
}

pub async fn queries(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let seconds = bench.sizes.query_seconds;
    let trades = bench.sizes.timetravel_trades;
    // A BTC price (the ticks scenario leaves thousands; alone, a few are produced).
    let has_price = |v: &Value| !v["data"]["price"].is_null();
    if !has_price(&bench.app.graphql(PRICE, json!({}), None).await) {
        bench.app.produce_ticks(&seed::tick_series(10, 3, 0)).await;
    }
    let token = Some(bench.session.token.as_str());
    let price = bench
        .app
        .eventually(PRICE, json!({}), None, has_price)
        .await;

    let (portfolio, _) = portfolio_with_trades(bench, "queries", trades, 1).await?;
    let version = trades as i64 + 1;
    let variables = json!({ "id": portfolio });
    let summary = bench
        .app
        .eventually(SUMMARY, variables.clone(), token, |v| {
            v["data"]["portfolio"]["version"].as_i64() == Some(version)
                && v["data"]["portfolio"]["summary"]["holdings"]
                    .as_array()
                    .is_some_and(|h| !h.is_empty())
        })
        .await;

    let url = bench.app.url("/graphql");
    let mut figures = Vec::new();
    for (name, body, answer, token) in [
        ("price(coin)", json!({ "query": PRICE }), price, None),
        (
            "portfolio summary",
            json!({ "query": SUMMARY, "variables": variables }),
            summary,
            token,
        ),
    ] {
        // The ceiling answers the very JSON coinfold answered.
        let answer = Bytes::from(serde_json::to_vec(&answer)?);
        let body = body.to_string();
        let coinfold = wrk(&url, &body, token, seconds).await?;
        let bare_url = bare_server(answer.clone()).await?;
        let bare = wrk(&bare_url, &body, token, seconds).await?;
        let what = if name == "portfolio summary" {
            format!(
                "{name} of {} trades, wrk -c{CONNECTIONS}",
                number(trades as f64)
            )
        } else {
            format!("{name}, wrk -c{CONNECTIONS}")
        };
        figures.push(
            Figure::new(
                "queries",
                what.clone(),
                coinfold.requests_per_second,
                "req/s",
            )
            .ceiling("bare axum, same JSON", bare.requests_per_second)
            .detail("answer", format!("{} bytes", answer.len())),
        );
        figures.push(
            Figure::new("queries", format!("{name} p99"), coinfold.p99_ms, "ms")
                .lower_is_better()
                .ceiling("bare axum", bare.p99_ms)
                .detail(
                    "p50",
                    format!("{:.2} ms (bare {:.2} ms)", coinfold.p50_ms, bare.p50_ms),
                ),
        );
    }
    Ok(figures)
}
