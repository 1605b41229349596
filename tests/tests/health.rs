//! `/health` and `/ready`, through HTTP only.

use coinfold_tests::{closed_port, spawn_app, spawn_app_with};
use serde_json::Value;
use sqlx::PgPool;

async fn ready(app: &coinfold_tests::TestApp) -> (u16, Value) {
    let response = app.get("/ready").await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("/ready answers JSON"))
}

fn down(body: &Value) -> Vec<&str> {
    body["down"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn health_answers_even_when_every_dependency_is_down(pool: PgPool) {
    let app = spawn_app_with(&pool, |settings| {
        settings.redis.url = format!("redis://{}", closed_port()).into();
        settings.kafka.brokers = closed_port().to_string();
    })
    .await;
    let response = app.get("/health").await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn ready_reports_postgres_redis_and_kafka_up(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let (status, body) = ready(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    let checks = body["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["postgres", "redis", "kafka"]);
    assert!(checks.iter().all(|c| c["up"] == true), "{body}");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn ready_answers_503_naming_redis_when_redis_is_down(pool: PgPool) {
    let app = spawn_app_with(&pool, |settings| {
        settings.redis.url = format!("redis://{}", closed_port()).into();
    })
    .await;
    let (status, body) = ready(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(down(&body), ["redis"], "{body}");
    let redis = &body["checks"][1];
    assert_eq!(redis["name"], "redis");
    assert!(
        redis["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn ready_names_postgres_and_kafka_when_they_are_down(pool: PgPool) {
    let app = spawn_app_with(&pool, |settings| {
        let closed = closed_port();
        settings.database = settings.database.with_port(closed.port());
        settings.kafka.brokers = closed_port().to_string();
    })
    .await;
    let (status, body) = ready(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(down(&body), ["postgres", "kafka"], "{body}");
    // The answer names what failed, never the credentials it was given.
    assert!(!body.to_string().contains("postgres://"), "{body}");
}
