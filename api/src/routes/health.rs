//! `/health` (liveness: the process answers) and `/ready` (readiness: every dependency
//! answers). Kubernetes restarts a pod that fails the first and stops routing to one
//! that fails the second, so `/health` must not depend on anything outside.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::startup::AppState;

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when PostgreSQL, Redis and the broker all answer; 503 naming what is down.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let checks = state.dependencies.check_all().await;
    let down: Vec<&str> = checks.iter().filter(|c| !c.up).map(|c| c.name).collect();
    if down.is_empty() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "checks": checks })),
        )
    } else {
        tracing::warn!(dependencies.down = ?down, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "down": down, "checks": checks })),
        )
    }
}
