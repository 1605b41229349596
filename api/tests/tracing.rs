//! One trace from a GraphQL mutation to the projection that applies its event, across
//! three processes: `coinfold serve`, `coinfold relay` and `coinfold project` each
//! export their spans over OTLP/HTTP (protobuf) to a receiver in this test. The
//! client's `traceparent` starts the trace; the command stores its span's context in
//! the event's metadata and outbox row; the relay and the projection continue it, and
//! the Kafka message carries the relay's span context on.

mod common;
#[allow(dead_code)] // this file runs serve, relay and project, and produces no ticks
#[path = "common/process.rs"]
mod process;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use process::{Projector, Running, free_port};
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers as _;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::time::Instant;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: BTreeMap<String, String>,
}

type Spans = Arc<Mutex<Vec<Received>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(n)) => n.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// `POST /v1/traces` as an OpenTelemetry collector answers it.
async fn receive(State(spans): State<Spans>, body: Bytes) -> impl IntoResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut received = spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(|a| text(a.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|a| {
                            let value = a.value.as_ref().and_then(|v| v.value.as_ref());
                            (a.key.clone(), text(value))
                        })
                        .collect(),
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse: everything accepted.
    (StatusCode::OK, Vec::new())
}

async fn start_receiver() -> (u16, Spans) {
    let spans = Spans::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone())
        .layer(axum::middleware::map_response(
            |mut response: axum::response::Response| async move {
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/x-protobuf"),
                );
                response
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, spans)
}

/// `coinfold <role>` exporting to the receiver as `coinfold-<role>`; `serve` listens
/// on `port`.
fn spawn_traced(projector: &Projector, args: &[&str], receiver: u16, port: u16) -> Running {
    let role = args[0];
    let mut command = projector.command(args);
    command
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{receiver}"),
        )
        .env("OTEL_SERVICE_NAME", format!("coinfold-{role}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    if role == "serve" {
        command
            .env("COINFOLD_APPLICATION__PORT", port.to_string())
            .env(
                "COINFOLD_AUTH__JWT_SECRET",
                "a-test-secret-of-at-least-32-bytes!!",
            );
    }
    Running(
        command
            .spawn()
            .unwrap_or_else(|e| panic!("coinfold {role} starts: {e}")),
    )
}

async fn graphql(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
    headers: &[(&str, String)],
) -> Value {
    let mut request = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let answer: Value = request.send().await.unwrap().json().await.unwrap();
    assert!(answer["errors"].is_null(), "{answer}");
    answer
}

/// The spans of `trace_id` once every name in `wanted` has arrived (at most 60 s).
async fn trace_with(spans: &Spans, trace_id: &str, wanted: &[&str]) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let trace: Vec<Received> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        if wanted.iter().all(|w| trace.iter().any(|s| s.name == *w)) {
            return trace;
        }
        assert!(
            Instant::now() < deadline,
            "not every span of {wanted:?} arrived in 60 s; trace {trace_id} has {:#?}; all: {:#?}",
            trace
                .iter()
                .map(|s| (&s.service, &s.name))
                .collect::<Vec<_>>(),
            spans
                .lock()
                .unwrap()
                .iter()
                .map(|s| (&s.service, &s.name, &s.trace_id, &s.parent_span_id))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn named<'a>(trace: &'a [Received], name: &str) -> &'a Received {
    trace
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn one_trace_runs_from_the_mutation_through_the_relay_and_the_projection(pool: PgPool) {
    let (receiver, spans) = start_receiver().await;
    let projector = Projector::for_test(&pool);
    let port = free_port();
    let _serve = spawn_traced(&projector, &["serve"], receiver, port);
    let _relay = spawn_traced(&projector, &["relay"], receiver, port);
    let _project = spawn_traced(
        &projector,
        &["project", "--only", "portfolios"],
        receiver,
        port,
    );

    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/graphql");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "coinfold serve did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let registered = graphql(
        &client,
        &url,
        "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
        json!({ "input": { "username": "tracy", "email": "tracy@example.com",
                           "password": "correct horse battery" } }),
        &[],
    )
    .await;
    let token = registered["data"]["register"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // The client's own span: the trace starts there.
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let client_span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let created = graphql(
        &client,
        &url,
        "mutation { createPortfolio(input: { name: \"Traced\" }) { id } }",
        json!({}),
        &[
            ("authorization", format!("Bearer {token}")),
            ("traceparent", format!("00-{trace_id}-{client_span}-01")),
        ],
    )
    .await;
    let portfolio = created["data"]["createPortfolio"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let trace = trace_with(
        &spans,
        &trace_id,
        &[
            "http.request",
            "graphql",
            "command",
            "event_store.append",
            "relay.publish",
            "projection.apply",
        ],
    )
    .await;
    println!("trace {trace_id}, the client's span {client_span}:");
    for span in &trace {
        println!(
            "{:<16} {:<26} span {} parent {}",
            span.service, span.name, span.span_id, span.parent_span_id
        );
    }
    let request = named(&trace, "http.request");
    let operation = named(&trace, "graphql");
    let command = named(&trace, "command");
    let append = named(&trace, "event_store.append");
    let relayed = named(&trace, "relay.publish");
    let applied = named(&trace, "projection.apply");

    // The API's spans nest: client → request → operation → … → command → append.
    assert_eq!(request.service, "coinfold-serve");
    assert_eq!(request.parent_span_id, client_span);
    assert_eq!(operation.parent_span_id, request.span_id);
    assert_eq!(
        operation.attributes["graphql.operation"],
        "mutation createPortfolio"
    );
    let mut ancestor = command.parent_span_id.clone();
    while ancestor != operation.span_id {
        ancestor = trace
            .iter()
            .find(|s| s.span_id == ancestor)
            .unwrap_or_else(|| panic!("the command's ancestor {ancestor} is not in the trace"))
            .parent_span_id
            .clone();
    }
    assert_eq!(command.service, "coinfold-serve");
    assert_eq!(command.attributes["aggregate.id"], portfolio);
    assert_eq!(command.attributes["aggregate.type"], "Portfolio");
    assert_eq!(command.attributes["command"], "Create");
    assert_eq!(append.parent_span_id, command.span_id);
    // The other processes continue the command's span.
    assert_eq!(relayed.service, "coinfold-relay");
    assert_eq!(relayed.parent_span_id, command.span_id);
    assert_eq!(applied.service, "coinfold-project");
    assert_eq!(applied.parent_span_id, command.span_id);
    assert_eq!(applied.attributes["projection"], "portfolios");
    assert_eq!(applied.attributes["event.name"], "PortfolioCreated");

    // The published message carries the relay's span context on.
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set(
            "bootstrap.servers",
            process::env_or("KAFKA_BROKERS", "127.0.0.1:9092"),
        )
        .set("group.id", format!("{}trace-check", projector.prefix))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let topic = format!("{}coinfold.domain-events", projector.prefix);
    consumer.subscribe(&[&topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let traceparent = loop {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .expect("the PortfolioCreated message within 60 s")
            .unwrap();
        let headers = message.headers().expect("headers");
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        if header("event_type").as_deref() == Some("PortfolioCreated") {
            break header("traceparent").expect("a traceparent header");
        }
    };
    assert_eq!(
        traceparent,
        format!("00-{trace_id}-{}-01", relayed.span_id),
        "the message's context is the relay's span"
    );

    // A request without a traceparent starts a trace of its own, which runs on too.
    let registration: Vec<Received> = spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| {
            s.attributes.get("graphql.operation").map(String::as_str) == Some("mutation register")
        })
        .cloned()
        .collect();
    assert_eq!(registration.len(), 1, "{registration:?}");
    assert_ne!(registration[0].trace_id, trace_id);
    trace_with(
        &spans,
        &registration[0].trace_id,
        &["command", "event_store.append", "relay.publish"],
    )
    .await;
}
