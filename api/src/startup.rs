//! Building the app from its settings and running it.
//!
//! `App::build` binds the listener first (port 0 picks a free one, which tests use)
//! and connects lazily, so a server whose database is down still starts, answers
//! `/health`, and says on `/ready` what is missing instead of crash-looping.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::http::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::get;
use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use std::time::Duration;

use axum::routing::post;
use coinfold_commands::event_store::PgEventRepository;
use coinfold_commands::service::{CommandOptions, CommandService};
use coinfold_commands::users::UserService;
use coinfold_projections::projection::notify;

use crate::auth::API_KEY_HEADER;
use crate::auth::refresh::RefreshTokens;
use crate::auth::tokens::AccessTokens;
use crate::graphql::{self, Api, GraphqlState, Limits};
use crate::hub::Hub;
use crate::metrics::MetricsState;
use crate::rate_limit::RateLimiter;
use crate::readiness::Dependencies;
use crate::routes;
use crate::settings::{DatabaseSettings, KafkaSettings, Settings};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub dependencies: Dependencies,
}

/// A built, bound, not yet running server.
pub struct App {
    listener: TcpListener,
    router: Router,
}

impl App {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let address = SocketAddr::new(settings.application.host, settings.application.port);
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        // The API's statements end at graphql.statement_timeout_ms (answered TIMEOUT);
        // the worker roles' pools (rebuilds, imports by the operator) have no such limit.
        let db = PgPoolOptions::new()
            .max_connections(settings.database.max_connections)
            .acquire_timeout(settings.database.acquire_timeout)
            .connect_lazy_with(settings.database.connect_options().options([(
                "statement_timeout",
                format!("{}ms", settings.graphql.statement_timeout_ms),
            )]));
        let (state, metrics) = probes(settings, db.clone())?;
        let graphql = graphql_state(settings, db, state.dependencies.redis.clone())?;
        Ok(Self {
            listener,
            router: router(state, graphql, metrics, settings),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(http.address = %self.listener.local_addr()?, "serving");
        axum::serve(
            self.listener,
            // The peer address is what the per-address rate limit counts.
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

/// What `/ready` checks and what `/metrics` reads.
fn probes(settings: &Settings, db: PgPool) -> anyhow::Result<(AppState, MetricsState)> {
    let redis =
        redis::Client::open(settings.redis.url.expose_secret()).context("cannot use redis.url")?;
    let kafka = Arc::new(kafka_admin(&settings.kafka)?);
    let metrics = MetricsState {
        db: db.clone(),
        brokers: settings.kafka.brokers.clone(),
        topic_prefix: settings.kafka.topic_prefix.clone(),
    };
    let state = AppState {
        dependencies: Dependencies {
            db,
            redis,
            kafka,
            timeout: settings.readiness.timeout,
        },
    };
    Ok((state, metrics))
}

/// `/health`, `/ready` and `/metrics`: the API's and the ops listener's.
fn probe_routes(state: AppState, metrics: MetricsState) -> Router {
    // Installed before the first request records anything.
    crate::metrics::handle();
    Router::new()
        .route("/health", get(routes::health))
        .route("/ready", get(routes::ready))
        .with_state(state)
        .merge(
            Router::new()
                .route("/metrics", get(crate::metrics::render))
                .with_state(metrics),
        )
}

/// The worker roles' listener (`[ops]`, when a port is set): `/health`, `/ready` and
/// `/metrics`, without the API, until `cancel` fires. Its address, or None when off.
pub async fn spawn_ops(
    settings: &Settings,
    cancel: CancellationToken,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(port) = settings.ops.port else {
        return Ok(None);
    };
    let address = SocketAddr::new(settings.ops.host, port);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} (ops)"))?;
    let local = listener.local_addr()?;
    let (state, metrics) = probes(settings, connect_lazy(&settings.database))?;
    let router = probe_routes(state, metrics);
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the ops listener failed");
        }
    });
    tracing::info!(http.address = %local, "ops listener: /health, /ready, /metrics");
    Ok(Some(local))
}

/// The API's schema over the write side and the read models.
fn graphql_state(
    settings: &Settings,
    db: PgPool,
    redis: redis::Client,
) -> anyhow::Result<GraphqlState> {
    let secret = settings.auth.jwt_secret.as_ref().context(
        "auth.jwt_secret is not set: export COINFOLD_AUTH__JWT_SECRET (32 bytes or more, the \
         same on every instance; deploy/local/up.sh writes one to .local/env)",
    )?;
    // Each commit rings `coinfold.log`: `events` subscribers on every instance wake.
    let repo = PgEventRepository::new(db.clone(), &settings.kafka.topic_prefix).ringing(
        notify::ring_log(redis.clone(), &settings.kafka.topic_prefix),
    );
    let options = CommandOptions::default();
    let api = Arc::new(Api::new(
        db.clone(),
        UserService::new(CommandService::new(repo.clone(), (), options)),
        CommandService::new(repo.clone(), (), options),
        CommandService::new(repo, (), options),
        AccessTokens::new(
            secret,
            Duration::from_secs(settings.auth.access_ttl_seconds),
        ),
        RefreshTokens::new(db, Duration::from_secs(settings.auth.refresh_ttl_seconds)),
    ));
    let limits = Limits {
        max_depth: settings.graphql.max_depth,
        max_complexity: settings.graphql.max_complexity,
        max_body_bytes: settings.graphql.max_body_bytes,
        introspection: settings.graphql.introspection,
        ws_init_timeout: Duration::from_millis(settings.graphql.ws_init_timeout_ms),
        max_subscriptions: settings.graphql.max_subscriptions_per_connection,
        ws_credential_check: Duration::from_millis(settings.graphql.ws_credential_check_ms),
        request_timeout: Duration::from_millis(settings.graphql.request_timeout_ms),
    };
    let hub = Hub::new(redis.clone(), &settings.kafka.topic_prefix);
    let limiter = Arc::new(RateLimiter::new(
        redis,
        &settings.kafka.topic_prefix,
        settings.graphql.user_requests_per_minute,
        settings.graphql.ip_requests_per_minute,
    ));
    Ok(GraphqlState {
        schema: graphql::schema(
            api.clone(),
            hub,
            limits,
            graphql::LiveSettings {
                portfolio_every: Duration::from_millis(settings.graphql.portfolio_update_ms),
                max_coins: settings.graphql.max_coins_per_subscription,
            },
        ),
        api,
        limits,
        limiter,
    })
}

fn router(
    state: AppState,
    graphql: GraphqlState,
    metrics: MetricsState,
    settings: &Settings,
) -> Router {
    let cors_origins = &settings.graphql.cors_origins;
    let web_dir = settings.web.dir.clone();
    let body_limit = RequestBodyLimitLayer::new(graphql.limits.max_body_bytes);
    let mut api = Router::new()
        // POST only: a GET would run mutations too, with passwords and tokens in the URL.
        .route("/graphql", post(graphql::handler))
        .route("/graphql/ws", get(graphql::ws_handler))
        .layer(body_limit)
        .with_state(graphql);
    if !cors_origins.is_empty() {
        api = api.layer(cors(cors_origins));
    }
    let mut router = Router::new();
    if settings.graphql.graphiql {
        router = router.route("/graphiql", get(graphql::graphiql));
    }
    router
        .merge(probe_routes(state, metrics))
        .merge(api)
        // Every other path: the dashboard (`/` is the app).
        .fallback(move |request| routes::web::serve(web_dir.clone(), request))
        .layer(
            // The path only: query strings may carry tokens.
            // A client's W3C `traceparent` header is continued.
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let span = tracing::info_span!(
                    "http.request",
                    http.method = %request.method(),
                    http.path = request.uri().path(),
                );
                crate::telemetry::continue_from_headers(&span, request.headers());
                span
            }),
        )
}

/// The CORS allow-list: these origins may POST GraphQL with a bearer token or an API
/// key (no cookies are used, so no credentials mode).
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static(API_KEY_HEADER),
        ])
        .max_age(Duration::from_secs(3600))
}

/// A pool that connects on first use, so start-up does not wait for the database.
pub fn connect_lazy(settings: &DatabaseSettings) -> PgPool {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(settings.connect_options())
}

fn kafka_admin(settings: &KafkaSettings) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", &settings.client_id)
        // A broker that is down is reported by /ready; no need to log every retry.
        .set("log.connection.close", "false")
        .create()
        .context("cannot configure the Kafka client")
}

/// Completes on Ctrl-C or SIGTERM (what Kubernetes sends before killing a pod).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
