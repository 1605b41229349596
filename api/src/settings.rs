//! One `Settings` value, loaded from `deploy/config/base.toml` and the environment,
//! validated before anything starts.
//!
//! Layers, lowest first:
//! 1. `<config dir>/base.toml` (the directory is `--config-dir` / `COINFOLD_CONFIG_DIR`);
//! 2. `COINFOLD_<SECTION>__<KEY>` variables, e.g. `COINFOLD_APPLICATION__PORT=9000`;
//! 3. the conventional `DATABASE_URL`, `REDIS_URL` and `KAFKA_BROKERS`, which the
//!    `deploy/local` scripts print and most tools understand.
//!
//! The database and Redis URLs may carry passwords, so they are `SecretString`s: their
//! `Debug` prints a redaction and no error here ever repeats them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::postgres::PgConnectOptions;

pub use coinfold_projections::ingest::run::IngestSettings;

#[derive(Debug, Clone)]
pub struct Settings {
    pub application: ApplicationSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub kafka: KafkaSettings,
    pub readiness: ReadinessSettings,
    /// The connectors of `coinfold ingest` (projections::ingest::run).
    pub ingest: IngestSettings,
    /// The projection workers and the alert evaluator of `coinfold project`.
    pub projections: ProjectionSettings,
    /// The worker roles' listener for probes and scrapes.
    pub ops: OpsSettings,
    pub auth: AuthSettings,
    pub graphql: GraphqlSettings,
    /// The dashboard's built files.
    pub web: WebSettings,
}

/// `serve` answers every path no API route takes from `dir`: the built dashboard
/// (`web/`, `npm run build`). Relative to the working directory.
#[derive(Debug, Clone, Deserialize)]
pub struct WebSettings {
    pub dir: std::path::PathBuf,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            dir: "web/dist".into(),
        }
    }
}

/// `coinfold project`, `ingest` and `relay` answer `/health`, `/ready` and `/metrics` on
/// `host:port` when a port is set (`COINFOLD_OPS__PORT`; 0 picks a free one). `serve`
/// has them on its own port.
#[derive(Debug, Clone, Deserialize)]
pub struct OpsSettings {
    pub host: IpAddr,
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// Signs access tokens (HS256); at least 32 bytes, only from the environment
    /// (`COINFOLD_AUTH__JWT_SECRET`). Every API instance needs the same one. `serve`
    /// refuses to start without it.
    #[serde(default)]
    pub jwt_secret: Option<SecretString>,
    pub access_ttl_seconds: u64,
    pub refresh_ttl_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GraphqlSettings {
    /// The deepest selection a query may nest (introspection fields not counted).
    pub max_depth: usize,
    /// The most fields (each counted once, lists by their page size) a query may ask.
    pub max_complexity: usize,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Requests a signed-in user may make per minute (counted in Redis, across
    /// instances); 0 turns the limit off.
    pub user_requests_per_minute: u64,
    /// Requests one client address may make per minute, signed in or not; 0: off.
    pub ip_requests_per_minute: u64,
    /// Whether the schema answers introspection (`__schema`, `__type`): on for local
    /// runs and the demo, off in `deploy/` (clients use `schema/schema.graphql`).
    pub introspection: bool,
    /// Whether `serve` answers GraphiQL at `/graphiql` (same defaults).
    pub graphiql: bool,
    /// A graphql-ws connection that sends no `connection_init` within this many
    /// milliseconds is closed (4408).
    pub ws_init_timeout_ms: u64,
    /// How many subscriptions one graphql-ws connection may have open at once.
    pub max_subscriptions_per_connection: usize,
    /// How many coins one `prices`, `candles` or `sentiment` subscription may name.
    pub max_coins_per_subscription: usize,
    /// How often, in milliseconds, a signed-in graphql-ws connection's credential is
    /// checked again (logout, password change, revoked key, expiry close it with 4403).
    pub ws_credential_check_ms: u64,
    /// The longest a `POST /graphql` request may run, in milliseconds (504 TIMEOUT).
    pub request_timeout_ms: u64,
    /// The longest one of the API's PostgreSQL statements may run, in milliseconds
    /// (`statement_timeout` on `serve`'s connections; TIMEOUT). 0: no limit.
    pub statement_timeout_ms: u64,
    /// Browser origins allowed to call the API (CORS), e.g. `https://app.example.com`;
    /// empty allows none. `COINFOLD_GRAPHQL__CORS_ORIGINS` takes a comma-separated list.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// The shortest time between two summaries of a `portfolio(id)` subscription, in
    /// milliseconds (price ticks in between are folded into the next one).
    pub portfolio_update_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProjectionSettings {
    /// Each Kafka-fed projection's consumer group is `<group_prefix>.<name>`; the alert
    /// evaluator's is `<group_prefix>.alert-evaluator`.
    pub group_prefix: String,
    /// Events or messages per transaction, at most.
    pub batch_size: usize,
    /// How long a Kafka-fed batch waits for more messages once one has arrived.
    pub linger_ms: u64,
    /// Run the alert evaluator with the projections.
    pub alerts: bool,
    /// This process's stable name in its consumer groups (static membership), e.g. a
    /// StatefulSet pod name; unset, membership is dynamic.
    #[serde(default)]
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApplicationSettings {
    pub host: IpAddr,
    /// 0 picks a free port (tests do).
    pub port: u16,
}

#[derive(Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Parsed from `url` when the settings were validated.
    connect_options: PgConnectOptions,
}

impl DatabaseSettings {
    pub fn connect_options(&self) -> PgConnectOptions {
        self.connect_options.clone()
    }

    /// The same settings pointed at another database of the same server (tests give
    /// each app its own; the demo has its own).
    pub fn with_database(&self, name: &str) -> Self {
        let mut other = self.clone();
        other.url = SecretString::from(url_with_database(self.url.expose_secret(), name));
        other.connect_options = other.connect_options.database(name);
        other
    }

    /// The same settings pointed at another port (tests use a closed one).
    pub fn with_port(&self, port: u16) -> Self {
        let mut other = self.clone();
        other.connect_options = other.connect_options.port(port);
        other
    }
}

/// A PostgreSQL URL with its database name replaced (the query string kept).
pub fn url_with_database(url: &str, database: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let server = match without_query.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, _)) => format!("{scheme}://{authority}"),
            None => without_query.to_owned(),
        },
        None => without_query.to_owned(),
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

// By hand: `PgConnectOptions`'s own Debug prints the password.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.url)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list.
    pub brokers: String,
    pub client_id: String,
    /// Put in front of every topic name.
    pub topic_prefix: String,
}

#[derive(Debug, Clone)]
pub struct ReadinessSettings {
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// The shape of the files and variables, before validation.
#[derive(Debug, Deserialize)]
struct RawSettings {
    application: ApplicationSettings,
    database: RawDatabase,
    redis: RedisSettings,
    kafka: KafkaSettings,
    readiness: RawReadiness,
    ingest: IngestSettings,
    projections: ProjectionSettings,
    ops: OpsSettings,
    auth: AuthSettings,
    graphql: GraphqlSettings,
    #[serde(default)]
    web: WebSettings,
}

#[derive(Debug, Deserialize)]
struct RawDatabase {
    url: Option<SecretString>,
    max_connections: u32,
    acquire_timeout_ms: u64,
}

#[derive(Debug, Deserialize)]
struct RawReadiness {
    timeout_ms: u64,
}

impl Settings {
    /// Loads from `config_dir` and the process environment.
    pub fn load(config_dir: &Path) -> Result<Self, SettingsError> {
        Self::load_with_env(config_dir, std::env::vars().collect())
    }

    /// Loads from `config_dir` and the given variables instead of the process's, so
    /// tests need not touch the global environment.
    pub fn load_with_env(
        config_dir: &Path,
        env: HashMap<String, String>,
    ) -> Result<Self, SettingsError> {
        let conventional = [
            ("DATABASE_URL", "database.url"),
            ("REDIS_URL", "redis.url"),
            ("KAFKA_BROKERS", "kafka.brokers"),
        ];
        let mut builder = config::Config::builder()
            .add_source(config::File::from(config_dir.join("base.toml")).required(true))
            .add_source(
                config::Environment::with_prefix("COINFOLD")
                    .prefix_separator("_")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("ingest.sources")
                    .with_list_parse_key("graphql.cors_origins")
                    .with_list_parse_key("ingest.binance.pairs")
                    .with_list_parse_key("ingest.binance.streams")
                    .with_list_parse_key("ingest.coinbase.product_ids")
                    .with_list_parse_key("ingest.coinbase.channels")
                    .with_list_parse_key("ingest.coingecko.currencies")
                    .try_parsing(true)
                    .source(Some(env.clone())),
            );
        for (variable, key) in conventional {
            if let Some(value) = env.get(variable).filter(|v| !v.is_empty()) {
                builder = builder.set_override(key, value.as_str())?;
            }
        }
        let raw: RawSettings = builder.build()?.try_deserialize()?;
        raw.validate()
    }
}

impl RawSettings {
    fn validate(self) -> Result<Settings, SettingsError> {
        let mut problems = Vec::new();

        let mut connect_options = None;
        match &self.database.url {
            None => problems.push(
                "database.url is not set: export DATABASE_URL (deploy/local/up.sh prints it)"
                    .to_owned(),
            ),
            Some(url) => {
                let url = url.expose_secret();
                // Never echo the URL: it may hold a password.
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    problems.push(
                        "database.url must start with postgres:// or postgresql://".to_owned(),
                    );
                } else {
                    match PgConnectOptions::from_str(url) {
                        Ok(options) => connect_options = Some(options),
                        Err(e) => problems
                            .push(format!("database.url does not parse ({})", error_kind(&e))),
                    }
                }
            }
        }
        if self.database.max_connections == 0 {
            problems.push("database.max_connections must be at least 1".to_owned());
        }
        if self.database.acquire_timeout_ms == 0 {
            problems.push("database.acquire_timeout_ms must be above 0".to_owned());
        }
        if redis::Client::open(self.redis.url.expose_secret()).is_err() {
            problems.push("redis.url is not a redis:// or rediss:// URL".to_owned());
        }
        if let Err(problem) = validate_brokers(&self.kafka.brokers) {
            problems.push(problem);
        }
        if self.kafka.client_id.trim().is_empty() {
            problems.push("kafka.client_id must not be empty".to_owned());
        }
        if self.readiness.timeout_ms == 0 {
            problems.push("readiness.timeout_ms must be above 0".to_owned());
        }
        problems.extend(self.ingest.problems());
        if !(1..=100_000).contains(&self.projections.batch_size) {
            problems.push("projections.batch_size must be 1 to 100000".to_owned());
        }
        if self.projections.group_prefix.trim().is_empty() {
            problems.push("projections.group_prefix must not be empty".to_owned());
        }
        if self
            .auth
            .jwt_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < crate::auth::tokens::MIN_SECRET_BYTES)
        {
            problems.push(format!(
                "auth.jwt_secret must be at least {} bytes",
                crate::auth::tokens::MIN_SECRET_BYTES
            ));
        }
        if self.auth.access_ttl_seconds == 0 || self.auth.refresh_ttl_seconds == 0 {
            problems
                .push("auth.access_ttl_seconds and refresh_ttl_seconds must be above 0".to_owned());
        }
        if self.graphql.max_depth == 0
            || self.graphql.max_complexity == 0
            || self.graphql.max_body_bytes == 0
            || self.graphql.max_subscriptions_per_connection == 0
            || self.graphql.max_coins_per_subscription == 0
            || self.graphql.request_timeout_ms == 0
        {
            problems.push(
                "graphql.max_depth, max_complexity, max_body_bytes, max_subscriptions_per_connection, \
                 max_coins_per_subscription and request_timeout_ms must be above 0"
                    .to_owned(),
            );
        }
        for origin in &self.graphql.cors_origins {
            if axum::http::HeaderValue::from_str(origin).is_err()
                || !(origin.starts_with("http://") || origin.starts_with("https://"))
            {
                problems.push(format!(
                    "graphql.cors_origins: {origin:?} is not an origin such as https://app.example.com"
                ));
            }
        }

        match (problems.is_empty(), self.database.url, connect_options) {
            (true, Some(url), Some(connect_options)) => Ok(Settings {
                application: self.application,
                database: DatabaseSettings {
                    url,
                    max_connections: self.database.max_connections,
                    acquire_timeout: Duration::from_millis(self.database.acquire_timeout_ms),
                    connect_options,
                },
                redis: self.redis,
                kafka: self.kafka,
                readiness: ReadinessSettings {
                    timeout: Duration::from_millis(self.readiness.timeout_ms),
                },
                ingest: self.ingest,
                projections: self.projections,
                ops: self.ops,
                auth: self.auth,
                graphql: self.graphql,
                web: self.web,
            }),
            _ => Err(SettingsError::Invalid(problems)),
        }
    }
}

/// The kind of a URL parse error, without the text that could contain the URL.
fn error_kind(error: &sqlx::Error) -> &'static str {
    match error {
        sqlx::Error::Configuration(_) => "bad option or value",
        _ => "malformed",
    }
}

fn validate_brokers(brokers: &str) -> Result<(), String> {
    let entries: Vec<&str> = brokers.split(',').map(str::trim).collect();
    if entries.iter().all(|e| e.is_empty()) {
        return Err("kafka.brokers must list at least one host:port".to_owned());
    }
    for entry in entries {
        let valid = entry
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(format!("kafka.brokers entry {entry:?} is not host:port"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config_dir() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/config"))
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const DB: &str = "postgres://coinfold:hunter2@127.0.0.1:5432/coinfold";

    #[test]
    fn another_database_keeps_the_server_the_credentials_and_the_query() {
        assert_eq!(
            url_with_database(DB, "coinfold_demo"),
            "postgres://coinfold:hunter2@127.0.0.1:5432/coinfold_demo"
        );
        assert_eq!(
            url_with_database("postgres://u:p%2F@h/db?sslmode=disable", "x"),
            "postgres://u:p%2F@h/x?sslmode=disable"
        );
        assert_eq!(
            url_with_database("postgres://u@h:1", "x"),
            "postgres://u@h:1/x"
        );
        let settings =
            Settings::load_with_env(&config_dir(), env(&[("DATABASE_URL", DB)])).unwrap();
        let other = settings.database.with_database("other");
        assert!(other.url.expose_secret().ends_with("/other"));
        assert_eq!(other.connect_options().get_database(), Some("other"));
    }

    #[test]
    fn the_base_file_plus_a_database_url_is_enough() {
        let settings =
            Settings::load_with_env(&config_dir(), env(&[("DATABASE_URL", DB)])).unwrap();
        assert_eq!(settings.application.port, 8080);
        assert_eq!(settings.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(settings.database.url.expose_secret(), DB);
        assert_eq!(settings.readiness.timeout, Duration::from_secs(2));
    }

    #[test]
    fn prefixed_variables_override_the_file() {
        let settings = Settings::load_with_env(
            &config_dir(),
            env(&[
                ("DATABASE_URL", DB),
                ("COINFOLD_APPLICATION__PORT", "9999"),
                ("COINFOLD_KAFKA__TOPIC_PREFIX", "t1."),
                ("KAFKA_BROKERS", "127.0.0.1:19092,127.0.0.2:19092"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.application.port, 9999);
        assert_eq!(settings.kafka.topic_prefix, "t1.");
        assert_eq!(settings.kafka.brokers, "127.0.0.1:19092,127.0.0.2:19092");
    }

    #[test]
    fn a_missing_database_url_is_named_with_the_fix() {
        let error = Settings::load_with_env(&config_dir(), env(&[])).unwrap_err();
        assert!(error.to_string().contains("export DATABASE_URL"), "{error}");
    }

    #[test]
    fn every_problem_is_reported_and_no_secret_is_echoed() {
        let error = Settings::load_with_env(
            &config_dir(),
            env(&[
                ("DATABASE_URL", "mysql://root:hunter2@127.0.0.1/x"),
                ("REDIS_URL", "http://:hunter2@127.0.0.1"),
                ("KAFKA_BROKERS", "localhost"),
                ("COINFOLD_DATABASE__MAX_CONNECTIONS", "0"),
            ]),
        )
        .unwrap_err();
        let text = error.to_string();
        let SettingsError::Invalid(problems) = error else {
            panic!("expected Invalid, got {text}");
        };
        assert_eq!(problems.len(), 4, "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!format!("{:?}", problems).contains("hunter2"));
    }

    #[test]
    fn debug_output_redacts_the_urls() {
        let settings = Settings::load_with_env(
            &config_dir(),
            env(&[
                ("DATABASE_URL", DB),
                ("REDIS_URL", "redis://:hunter2@127.0.0.1:6379"),
            ]),
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
