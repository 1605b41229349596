//! The GraphQL API: `POST /graphql` (no GET: it would run mutations with passwords
//! and tokens in the URL), subscriptions over graphql-ws at `/graphql/ws`, GraphiQL
//! at `/graphiql` (`/` is the dashboard, `routes::web`).
//!
//! - [`error`]: [`ApiError`], the `extensions.code` of every error a resolver returns;
//!   errors async-graphql itself raises (a parse error, an unknown field, a query
//!   too deep or too complex) are answered `VALIDATION` by [`handler`].
//! - [`depth`]: the depth limit, which leaves introspection out.
//! - [`account`]: `me`, `register`, `login`, `refreshToken`, `logout`, profile,
//!   preferences, password, API keys.
//! - [`portfolio`]: portfolios now and as of a past moment, their history, and the
//!   Portfolio commands.
//! - [`alerts`]: alerts, the watchlist, usage.
//! - [`market`]: market data, open to anonymous callers.
//! - [`live`]: the subscriptions.
//! - [`page`]: Relay cursor connections for every list.
//!
//! Every resolver that needs a user calls [`require_user`]; a refused credential is
//! `UNAUTHENTICATED` with the reason, never treated as anonymous. Every id a caller
//! names goes through [`owned`] (or a query filtered by the caller), so another user's
//! id answers NOT_FOUND.

pub mod account;
pub mod alerts;
pub mod depth;
pub mod error;
pub mod live;
pub mod market;
pub mod page;
pub mod portfolio;

use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::GraphiQLSource;
use async_graphql::{Context, Data, ID, MergedObject, Schema, SimpleObject};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use coinfold_commands::history;
use coinfold_commands::service::{Actor, CommandContext, CommandOutcome, CommandService};
use coinfold_commands::users::UserService;
use coinfold_domain::alert::Alert;
use coinfold_domain::portfolio::Portfolio;
use coinfold_domain::user::PasswordHash;
use coinfold_domain::values::CoinSymbol;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::auth::refresh::RefreshTokens;
use crate::auth::tokens::AccessTokens;
use crate::auth::{Caller, Principal, authenticate};
use crate::hub::Hub;
use crate::rate_limit::{RateLimiter, Subject};
pub use error::ApiError;

/// What the resolvers share.
pub struct Api {
    pub pool: PgPool,
    pub users: UserService,
    pub portfolios: CommandService<Portfolio>,
    pub alerts: CommandService<Alert>,
    pub tokens: AccessTokens,
    pub refresh: RefreshTokens,
    /// A hash to check unknown users' passwords against, so a login for a name that
    /// does not exist takes as long as one with a wrong password.
    pub(crate) decoy: OnceCell<PasswordHash>,
}

impl Api {
    pub fn new(
        pool: PgPool,
        users: UserService,
        portfolios: CommandService<Portfolio>,
        alerts: CommandService<Alert>,
        tokens: AccessTokens,
        refresh: RefreshTokens,
    ) -> Self {
        Self {
            pool,
            users,
            portfolios,
            alerts,
            tokens,
            refresh,
            decoy: OnceCell::new(),
        }
    }
}

#[derive(MergedObject, Default)]
pub struct Query(
    account::AccountQuery,
    portfolio::PortfolioQuery,
    alerts::AlertQuery,
    market::MarketQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    account::AccountMutation,
    portfolio::PortfolioMutation,
    alerts::AlertMutation,
);

pub type CoinfoldSchema = Schema<Query, Mutation, live::LiveSubscription>;

/// Limits on what one request may ask.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    /// The largest request body, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Whether `__schema` and `__type` answer (`graphql.introspection`).
    pub introspection: bool,
    /// How long a graphql-ws connection may stay without `connection_init`.
    pub ws_init_timeout: std::time::Duration,
    /// How many subscriptions one graphql-ws connection may have open.
    pub max_subscriptions: usize,
    /// How often a signed-in graphql-ws connection's credential is checked again.
    pub ws_credential_check: std::time::Duration,
    /// The longest a request over `POST /graphql` may run.
    pub request_timeout: std::time::Duration,
}

pub use live::LiveSettings;

pub fn schema(api: Arc<Api>, hub: Hub, limits: Limits, live: LiveSettings) -> CoinfoldSchema {
    let builder = Schema::build(
        Query::default(),
        Mutation::default(),
        live::LiveSubscription,
    )
    .data(api)
    .data(hub)
    .data(live)
    .extension(crate::metrics::Observe)
    .extension(depth::DepthLimit {
        max: limits.max_depth,
    })
    .limit_complexity(limits.max_complexity);
    // Clients build against schema/schema.graphql; a server open to strangers need not
    // describe itself to them.
    if limits.introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// The schema in SDL, as `schema/schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        live::LiveSubscription,
    )
    .finish()
    .sdl()
}

pub fn api<'a>(ctx: &Context<'a>) -> &'a Api {
    ctx.data_unchecked::<Arc<Api>>()
}

/// The calling user, or `UNAUTHENTICATED`.
pub fn require_user(ctx: &Context<'_>) -> Result<Principal, ApiError> {
    match ctx.data_opt::<Caller>() {
        Some(Caller::User(principal)) => Ok(*principal),
        Some(Caller::Refused(reason)) => Err(ApiError::Unauthenticated((*reason).to_owned())),
        Some(Caller::Anonymous) | None => Err(ApiError::Unauthenticated(
            "log in first: send `Authorization: Bearer <access token>`".to_owned(),
        )),
    }
}

/// What a command did, as a mutation answers it.
#[derive(SimpleObject)]
pub struct Receipt {
    /// The portfolio, alert or user the command was for.
    pub id: ID,
    /// Its version (event count) after the command.
    pub version: i64,
    /// How many events the command stored (0: nothing changed).
    pub events: i64,
    /// True when the idempotency key had been used: this is the first call's answer.
    pub replayed: bool,
    /// The trade or transfer the command recorded, corrected or voided.
    pub entry_id: Option<ID>,
}

impl From<CommandOutcome> for Receipt {
    fn from(outcome: CommandOutcome) -> Self {
        Self {
            id: ID(outcome.aggregate_id),
            version: i64::try_from(outcome.version).unwrap_or(i64::MAX),
            events: i64::try_from(outcome.events).unwrap_or(i64::MAX),
            replayed: outcome.replayed,
            entry_id: None,
        }
    }
}

impl Receipt {
    pub fn with_entry(mut self, entry: Uuid) -> Self {
        self.entry_id = Some(ID(entry.to_string()));
        self
    }
}

/// The context of a user's mutation: the user as actor, and with an idempotency key,
/// the request the key is checked against (the mutation's name and input), so a retry
/// is answered with the first outcome even though its command carries a new id or time.
pub fn user_context(
    principal: &Principal,
    mutation: &str,
    input: &impl Serialize,
    idempotency_key: Option<String>,
) -> CommandContext {
    let mut context = CommandContext::new(Actor::User(principal.user_id));
    if let Some(key) = idempotency_key {
        let input = serde_json::to_string(input).unwrap_or_default();
        context = context
            .with_idempotency_key(key)
            .with_request(format!("{mutation}:{input}"));
    }
    context
}

/// The id of a new trade, transfer or alert: the client's own (`given`), else one made
/// from the idempotency key (a retry names the same entry), else a new one.
pub fn entry_id(
    field: &str,
    given: &Option<ID>,
    principal: &Principal,
    idempotency_key: &Option<String>,
) -> Result<Uuid, ApiError> {
    if let Some(id) = given {
        return id
            .parse()
            .map_err(|_| ApiError::validation(field, "not a UUID"));
    }
    Ok(match idempotency_key {
        Some(key) => {
            let digest = Sha256::new()
                .chain_update(principal.user_id.as_bytes())
                .chain_update([0])
                .chain_update(key.as_bytes())
                .finalize();
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_custom_bytes(bytes).into_uuid()
        }
        None => Uuid::now_v7(),
    })
}

/// The aggregate `id` names when the caller owns it, by its creation event (owners
/// never change). Anything else, an id that is not one or another user's, answers
/// NOT_FOUND: a caller cannot tell whether it exists.
pub async fn owned(
    api: &Api,
    aggregate_type: &str,
    what: &'static str,
    id: &ID,
    principal: &Principal,
) -> Result<Uuid, ApiError> {
    let uuid: Uuid = id.parse().map_err(|_| ApiError::NotFound(what))?;
    let owner = history::owner(&api.pool, aggregate_type, &uuid.to_string())
        .await
        .map_err(ApiError::internal)?;
    match owner {
        Some(owner) if owner == principal.user_id => Ok(uuid),
        _ => Err(ApiError::NotFound(what)),
    }
}

/// Ok when `uuid` names nothing yet or something of the caller's; NOT_FOUND when it is
/// another user's, exactly as an unknown id answers elsewhere (a create with a chosen
/// id must not tell that someone else has it).
pub async fn not_anothers(
    api: &Api,
    aggregate_type: &str,
    what: &'static str,
    uuid: Uuid,
    principal: &Principal,
) -> Result<(), ApiError> {
    let owner = history::owner(&api.pool, aggregate_type, &uuid.to_string())
        .await
        .map_err(ApiError::internal)?;
    match owner {
        Some(owner) if owner != principal.user_id => Err(ApiError::NotFound(what)),
        _ => Ok(()),
    }
}

/// `coin` if the market knows it (it has a price or CoinGecko lists it); VALIDATION
/// naming `field` otherwise.
pub async fn known_coin(api: &Api, field: &str, coin: CoinSymbol) -> Result<CoinSymbol, ApiError> {
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM read.latest_prices WHERE coin = $1) \
             OR EXISTS (SELECT 1 FROM read.coins WHERE coin = $1)",
    )
    .bind(coin.as_str())
    .fetch_one(&api.pool)
    .await
    .map_err(ApiError::internal)?;
    if known {
        Ok(coin)
    } else {
        Err(ApiError::validation(
            field,
            format!("unknown coin {coin}: the market has no price for it"),
        ))
    }
}

/// What `/graphql` needs.
#[derive(Clone)]
pub struct GraphqlState {
    pub schema: CoinfoldSchema,
    pub api: Arc<Api>,
    pub limits: Limits,
    pub limiter: Arc<RateLimiter>,
}

/// `POST /graphql`: the caller's credential, the rate limits (per client address, and
/// per user when signed in), then the request.
pub async fn handler(
    State(state): State<GraphqlState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    let caller = authenticate(
        &headers,
        &state.api.tokens,
        &state.api.refresh,
        &state.api.users,
    )
    .await;
    let mut subjects = vec![Subject::Address(peer.ip())];
    if let Caller::User(principal) = &caller {
        subjects.push(Subject::User(principal.user_id));
    }
    if let Err(retry_after) = state.limiter.check(&subjects).await {
        return rate_limited(retry_after);
    }
    let running = state.schema.execute(request.into_inner().data(caller));
    let Ok(mut response) = tokio::time::timeout(state.limits.request_timeout, running).await else {
        // Dropped: its statements are cancelled with their connections' futures.
        return timed_out(state.limits.request_timeout);
    };
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "VALIDATION");
        }
    }
    GraphQLResponse::from(response).into_response()
}

/// `GET /graphql/ws`: graphql-ws (and the older subscriptions-transport-ws). The
/// connection's credential comes in `connection_init`'s payload, as
/// `{"authorization": "Bearer …"}` or `{"apiKey": "…"}`; a refused one closes the
/// connection. Each new connection counts against its address's rate limit.
/// The chunk a graphql-ws connection reads into.
const WS_READ_CHUNK: usize = 8 * 1024;

pub async fn ws_handler(
    State(state): State<GraphqlState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(retry_after) = state.limiter.check(&[Subject::Address(peer.ip())]).await {
        return rate_limited(retry_after);
    }
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Reads grow from 8 KiB chunks instead of 128 KiB ones: a subscriber sends a few
        // small messages, and an idle connection held 145 KiB with the default (50,000
        // subscribers need it below 40). No message may be larger than a request body.
        .read_buffer_size(WS_READ_CHUNK)
        .max_message_size(state.limits.max_body_bytes)
        .max_frame_size(state.limits.max_body_bytes)
        .on_upgrade(move |socket| serve_socket(socket, state, protocol))
}

/// One graphql-ws connection. The credential comes in `connection_init`, which must
/// arrive within `graphql.ws_init_timeout_ms`: a socket that never sends it would
/// otherwise hold its resources for ever. Past it, the connection is closed with
/// graphql-ws's 4408 (connection initialisation timeout).
///
/// A signed-in connection's credential is checked again every
/// `graphql.ws_credential_check_ms`: once it no longer holds (logout, a password
/// change elsewhere, a revoked API key, an expired access token), the connection is
/// closed with 4403 and its subscriptions end; the client connects again with a
/// fresh token.
async fn serve_socket(
    socket: axum::extract::ws::WebSocket,
    state: GraphqlState,
    protocol: GraphQLProtocol,
) {
    use futures_util::{SinkExt, StreamExt};
    use std::sync::atomic::{AtomicBool, Ordering};

    let (sink, stream) = socket.split();
    // Shared: the GraphQL side writes through it, and the timeout closes with it.
    let sink = Arc::new(tokio::sync::Mutex::new(sink));
    let writer = futures_util::sink::unfold(sink.clone(), |sink, message| async move {
        sink.lock().await.send(message).await?;
        Ok::<_, axum::Error>(sink)
    });
    let initialised = Arc::new(AtomicBool::new(false));
    let seen = initialised.clone();
    // The headers of a credential that was accepted, to check again.
    let credential: Arc<std::sync::Mutex<Option<HeaderMap>>> = Arc::default();
    let accepted = credential.clone();
    let api = state.api.clone();
    let max_subscriptions = state.limits.max_subscriptions;
    let graphql = GraphQLWebSocket::new_with_pair(writer, stream, state.schema.clone(), protocol)
        .on_connection_init(move |payload| async move {
            seen.store(true, Ordering::SeqCst);
            let mut headers = HeaderMap::new();
            let field = |name: &str| payload.get(name).and_then(|v| v.as_str());
            for (name, key) in [
                (header::AUTHORIZATION.as_str(), "authorization"),
                (crate::auth::API_KEY_HEADER, "apiKey"),
            ] {
                if let Some(value) = field(key).and_then(|v| HeaderValue::from_str(v).ok()) {
                    headers.insert(name, value);
                }
            }
            let caller = authenticate(&headers, &api.tokens, &api.refresh, &api.users).await;
            if let Caller::Refused(reason) = caller {
                return Err(async_graphql::Error::new(reason));
            }
            if matches!(caller, Caller::User(_)) {
                *accepted.lock().unwrap_or_else(|e| e.into_inner()) = Some(headers);
            }
            let mut data = Data::default();
            data.insert(caller);
            data.insert(live::Slots::new(max_subscriptions));
            Ok(data)
        })
        .serve();
    let deadline = async {
        tokio::time::sleep(state.limits.ws_init_timeout).await;
        if initialised.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    };
    let api = state.api.clone();
    let every = state.limits.ws_credential_check;
    let revoked = async move {
        loop {
            tokio::time::sleep(every).await;
            let headers = credential.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let Some(headers) = headers else { continue };
            if let Caller::Refused(reason) =
                authenticate(&headers, &api.tokens, &api.refresh, &api.users).await
            {
                return reason;
            }
        }
    };
    tokio::select! {
        () = graphql => {}
        reason = revoked => {
            metrics::counter!("coinfold_graphql_ws_credential_ended_total").increment(1);
            let close = axum::extract::ws::CloseFrame {
                code: 4403,
                reason: reason.into(),
            };
            let mut sink = sink.lock().await;
            let _ = sink.send(axum::extract::ws::Message::Close(Some(close))).await;
            let _ = sink.close().await;
        }
        () = deadline => {
            metrics::counter!("coinfold_graphql_ws_init_timeouts_total").increment(1);
            let close = axum::extract::ws::CloseFrame {
                code: 4408,
                reason: "Connection initialisation timeout".into(),
            };
            let mut sink = sink.lock().await;
            let _ = sink.send(axum::extract::ws::Message::Close(Some(close))).await;
            let _ = sink.close().await;
        }
    }
}

/// 504 with `TIMEOUT`, as a GraphQL error: the request ran past
/// `graphql.request_timeout_ms`.
fn timed_out(limit: std::time::Duration) -> Response {
    metrics::counter!("coinfold_graphql_timeouts_total").increment(1);
    tracing::warn!(
        limit_ms = limit.as_millis() as u64,
        "a request ran past its time limit"
    );
    let error = ApiError::Timeout;
    let body = serde_json::json!({
        "data": null,
        "errors": [{ "message": error.message(), "extensions": { "code": error.code() } }],
    });
    (StatusCode::GATEWAY_TIMEOUT, axum::Json(body)).into_response()
}

/// 429 with `RATE_LIMITED`, as a GraphQL error and a `Retry-After` header.
fn rate_limited(retry_after: u64) -> Response {
    metrics::counter!("coinfold_graphql_rate_limited_total").increment(1);
    let error = ApiError::RateLimited {
        retry_after_seconds: retry_after,
    };
    let body = serde_json::json!({
        "data": null,
        "errors": [{
            "message": error.message(),
            "extensions": { "code": error.code(), "retryAfter": retry_after },
        }],
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// GraphiQL at `/graphiql`, pointed at `/graphql` and its subscriptions at `/graphql/ws`.
pub async fn graphiql() -> impl IntoResponse {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}
