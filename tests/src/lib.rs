//! # coinfold-tests
//!
//! Support for end-to-end tests, which use the app only as a client would: over HTTP
//! (and, later, GraphQL and graphql-ws).
//!
//! Every test is isolated from every other, so they run in parallel:
//! - its own database: write the test as
//!   `#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]` taking a `PgPool`,
//!   and hand that pool to [`spawn_app`];
//! - its own topic names and consumer group: [`TestTopics`];
//! - its own port: the app binds port 0.
//!
//! The services come from `deploy/local/up.sh`; `DATABASE_URL` must name a role that
//! may create databases. Set `TEST_LOG=1` to see the app's logs.
//!
//! The crate also holds `coinfold-bench` (`src/bin/coinfold-bench`, run by
//! `scripts/bench.sh`): the benchmarks of `BENCHMARKS.md`, on the same harness.

pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use coinfold_api::settings::Settings;
use coinfold_api::startup::App;
use coinfold_api::{project, telemetry};
use coinfold_domain::values::{CoinSymbol, Price, QuoteCurrency};
use coinfold_projections::ingest::producer::{ensure_topics, producer_config};
use coinfold_projections::ingest::run::stream_topics;
use coinfold_projections::ingest::{Source, TICK_SCHEMA, Tick, TickKind};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Topic names and a consumer group that belong to one test alone. Tests never delete
/// topics (tansu 0.6 deletes every topic on one DeleteTopics call); fresh names keep
/// them apart instead.
#[derive(Debug, Clone)]
pub struct TestTopics {
    pub prefix: String,
}

impl Default for TestTopics {
    fn default() -> Self {
        Self::new()
    }
}

impl TestTopics {
    pub fn new() -> Self {
        Self {
            prefix: format!("test-{}.", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The test's own name for a topic such as `coinfold.market.ticks`.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The test's own consumer group.
    pub fn group(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// A running app and a client for it. The server stops when this is dropped.
pub struct TestApp {
    pub address: SocketAddr,
    pub settings: Settings,
    pub topics: TestTopics,
    pub http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Posts a GraphQL request to `/graphql`, with `token` as the bearer credential;
    /// the whole response body.
    pub async fn graphql(
        &self,
        query: &str,
        variables: serde_json::Value,
        token: Option<&str>,
    ) -> serde_json::Value {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .json(&serde_json::json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /graphql failed: {e}"));
        response.json().await.expect("/graphql answers JSON")
    }

    /// Registers `username` (password "correct horse battery") and logs in.
    pub async fn sign_up(&self, username: &str) -> Session {
        let response = self
            .graphql(
                "mutation($input: RegisterInput!) { register(input: $input) { \
                   accessToken refreshToken user { id } } }",
                json!({ "input": {
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "password": PASSWORD,
                } }),
                None,
            )
            .await;
        let register = data(&response, "register");
        Session {
            token: register["accessToken"]
                .as_str()
                .expect("a token")
                .to_owned(),
            user_id: register["user"]["id"].as_str().expect("an id").to_owned(),
        }
    }

    /// Creates a portfolio called `name` (USD, FIFO) for the holder of `token`; its id.
    pub async fn create_portfolio(&self, token: &str, name: &str) -> String {
        let response = self
            .graphql(
                "mutation($i: CreatePortfolioInput!) { createPortfolio(input: $i) { id } }",
                json!({ "i": { "name": name } }),
                Some(token),
            )
            .await;
        data(&response, "createPortfolio")["id"]
            .as_str()
            .expect("a portfolio id")
            .to_owned()
    }

    /// Runs every projection and the alert evaluator in this process, against the
    /// app's database and topics, until the returned handle is dropped. The stream
    /// topics are made first, as the topics job or ingest makes them in a deployment:
    /// a consumer subscribed to a topic that does not exist yet fails, and its restart
    /// and group join can take longer than a test waits. The tick topic is made as
    /// [`TestApp::produce_ticks`] makes it (one partition): tests wait on the last
    /// tick they produced.
    pub async fn run_projections(&self) -> Projections {
        let ticks = self.tick_topic();
        let topics: Vec<(String, i32)> = stream_topics(&self.settings.kafka.topic_prefix)
            .into_iter()
            .map(|topic| {
                if topic.0 == ticks.0 {
                    ticks.clone()
                } else {
                    topic
                }
            })
            .collect();
        ensure_topics(&self.settings.kafka.brokers, &topics)
            .await
            .expect("the stream topics exist");
        let cancel = CancellationToken::new();
        let settings = self.settings.clone();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = project::run(&settings, &[], stop).await {
                panic!("the projections stopped: {error:#}");
            }
        });
        Projections {
            cancel,
            _task: task,
        }
    }

    /// The app's tick topic and its partition count: one, so that ticks are applied in
    /// the order they were produced, whatever their coin.
    fn tick_topic(&self) -> (String, i32) {
        (self.topics.topic("coinfold.market.ticks"), 1)
    }

    /// Produces `ticks` to the app's tick topic (made if missing).
    pub async fn produce_ticks(&self, ticks: &[Tick]) {
        let (topic, partitions) = self.tick_topic();
        let brokers = &self.settings.kafka.brokers;
        ensure_topics(brokers, &[(topic.clone(), partitions)])
            .await
            .expect("the tick topic exists");
        let producer: FutureProducer = producer_config(brokers, "test-producer")
            .create()
            .expect("a producer");
        for tick in ticks {
            let body = serde_json::to_vec(tick).expect("a tick serializes");
            producer
                .send(
                    FutureRecord::to(&topic)
                        .key(tick.coin.as_str())
                        .payload(&body),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("a tick delivered");
        }
    }

    /// Asks `query` every 100 ms until `done` holds for its answer (at most 60 s); the
    /// answer that satisfied it.
    pub async fn eventually(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let response = self.graphql(query, variables.clone(), token).await;
            if done(&response) {
                return response;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not within 60 s: {query}; last answer {response}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
    }
}

/// The password [`TestApp::sign_up`] registers with.
pub const PASSWORD: &str = "correct horse battery";

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub user_id: String,
}

/// Projections running in the test's process; they stop when this is dropped.
pub struct Projections {
    cancel: CancellationToken,
    _task: JoinHandle<()>,
}

impl Drop for Projections {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The `extensions.code` of a response's first error.
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error with a code: {response}"))
}

/// `data.<field>` of a response that has no errors.
pub fn data<'a>(response: &'a Value, field: &str) -> &'a Value {
    assert!(response.get("errors").is_none(), "{response}");
    &response["data"][field]
}

/// A Coinbase ticker tick: `coin` at `price` USD at `at`.
pub fn usd_tick(coin: &str, price: Decimal, at: OffsetDateTime) -> Tick {
    Tick {
        schema: TICK_SCHEMA,
        source: Source::Coinbase,
        kind: TickKind::Ticker,
        coin: CoinSymbol::parse(coin).expect("a coin symbol"),
        quote: QuoteCurrency::usd(),
        price: Price::new(price).expect("a price"),
        size: None,
        side: None,
        trade_id: None,
        volume_24h: None,
        exchange_time: at,
        received_time: at,
    }
}

pub fn config_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/config"))
}

/// The settings a test app starts from: the repository's `base.toml` and the
/// environment, on port 0, with a fresh topic prefix and short readiness timeouts.
pub fn test_settings(topics: &TestTopics) -> Settings {
    let mut settings = Settings::load(&config_dir())
        .expect("test settings (is DATABASE_URL set? run deploy/local/up.sh)");
    settings.application.port = 0;
    settings.kafka.topic_prefix = topics.prefix.clone();
    settings.kafka.client_id = format!("{}client", topics.prefix);
    // Consumer groups of its own too: tansu keeps a member that left without saying
    // so (a test's projections dropped mid-run) in its group, and a later test joining
    // a group of the same name waited out its session with no partition (the history
    // test sat 60 s on an empty read model after the other stream tests had run).
    settings.projections.group_prefix = format!("{}projections", topics.prefix);
    settings.ingest.sentiment_group = format!("{}sentiment", topics.prefix);
    settings.readiness.timeout = Duration::from_millis(1_500);
    // Every request of a test comes from 127.0.0.1; tests that poll must not meet the
    // per-address limit (the rate-limit tests set their own).
    settings.graphql.ip_requests_per_minute = 100_000;
    // Each app its own signing key (tests that forge tokens read it from the settings).
    settings.auth.jwt_secret =
        Some(format!("test-secret-{}", uuid::Uuid::new_v4().simple()).into());
    settings
}

/// Starts the app against the test's own database.
pub async fn spawn_app(pool: &PgPool) -> TestApp {
    spawn_app_with(pool, |_| {}).await
}

/// Starts the app against the test's own database, after `customize` has had its say
/// on the settings (e.g. pointing Redis at a closed port).
pub async fn spawn_app_with(pool: &PgPool, customize: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        telemetry::init("debug", std::io::stdout);
    } else {
        telemetry::init("error", std::io::sink);
    }
    let topics = TestTopics::new();
    let mut settings = test_settings(&topics);
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .expect("the test database answers");
    settings.database = settings.database.with_database(&database);
    customize(&mut settings);

    let app = App::build(&settings).await.expect("the app builds");
    let address = app.local_addr().expect("the app is bound");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        settings,
        topics,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client"),
        _stop: stop,
    }
}

/// Reads `topic` from the start with a group of its own until `count` messages have
/// come, or fails after `timeout`.
pub async fn consume(
    brokers: &str,
    topics: &TestTopics,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", topics.group(&format!("check-{topic}")))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribed");
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while messages.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(message)) => messages.push(message.detach()),
            Ok(Err(error)) => panic!("consuming {topic}: {error}"),
            Err(_) => panic!(
                "{topic}: {} of {count} messages after {timeout:?}",
                messages.len()
            ),
        }
    }
    // Nothing more than expected arrives.
    if let Ok(Ok(extra)) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
        panic!(
            "{topic}: an unexpected extra message: {:?}",
            extra.key().map(String::from_utf8_lossy)
        );
    }
    messages
}

/// A loopback address where nothing listens: bind port 0, note it, let it go.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("a local address")
}
