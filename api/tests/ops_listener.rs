//! The worker roles' ops listener: `coinfold relay` with `COINFOLD_OPS__PORT` answers
//! `/health`, `/ready` and `/metrics` (what Kubernetes probes and Prometheus scrapes),
//! and closes it when stopped.

mod common;
#[allow(dead_code)] // this file runs the relay only
#[path = "common/process.rs"]
mod process;

use std::process::Stdio;
use std::time::Duration;

use process::{Projector, Running, free_port};
use sqlx::PgPool;
use tokio::time::Instant;

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_worker_role_answers_probes_and_scrapes_on_its_ops_port(pool: PgPool) {
    let projector = Projector::for_test(&pool);
    let port = free_port();
    let relay = Running(
        projector
            .command(&["relay"])
            .env("COINFOLD_OPS__PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("coinfold relay starts"),
    );
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(url("/health")).send().await {
            assert_eq!(response.status(), 200);
            break;
        }
        assert!(Instant::now() < deadline, "no /health on port {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = client.get(url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    let page = client
        .get(url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sample = |name: &str| -> f64 {
        page.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} is not on /metrics:\n{page}"))
    };
    // An empty store: nothing waits in the outbox, no projection lags.
    assert_eq!(sample("coinfold_outbox_backlog"), 0.0);
    assert_eq!(
        sample("coinfold_projection_lag{projection=\"portfolios\",source=\"log\"}"),
        0.0
    );
    assert!(sample("process_resident_memory_bytes") > 1_000_000.0);
    // The API is not there.
    let graphql = client
        .post(url("/graphql"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(graphql.status(), 404);

    assert!(
        relay.stop(Duration::from_secs(30)).await,
        "the relay stopped cleanly on SIGTERM"
    );
    assert!(
        client.get(url("/health")).send().await.is_err(),
        "the ops port closed with the process"
    );
}
