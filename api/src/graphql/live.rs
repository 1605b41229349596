//! Subscriptions over graphql-ws at `/graphql/ws`: `prices`, `candles`, `sentiment`,
//! `alertTriggered`, `portfolio` and `events`.
//!
//! The first five ride the projections' Redis notifications through the [`Hub`]
//! (one upstream per channel and instance). `portfolio(id)` answers the portfolio's
//! summary again whenever its holdings or one of its coins' prices change. `events`
//! reads the event store's global log itself: from `after` up to the high-water mark,
//! then on as events commit (woken by the log's doorbell, `coinfold.log`, which the
//! command services ring after each commit; at the latest every 250 ms), so a client
//! that reconnects with the last position it saw misses nothing and sees nothing twice.
//! A user sees only the events of their own user, portfolios and alerts.
//!
//! A connection authenticates once, in `connection_init`'s payload:
//! `{"authorization": "Bearer <access token>"}` or `{"apiKey": "<key>"}`. Market
//! subscriptions are open to anonymous connections too.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_graphql::{Context, ID, Json, SimpleObject, Subscription};
use coinfold_commands::history;
use coinfold_commands::upcasting::upcast_payload;
use coinfold_projections::global_log::{GlobalLog, RecordedEvent};
use coinfold_projections::projection::notify::LOG_TOPIC;
use coinfold_projections::queries;
use futures_util::{Stream, StreamExt};
use rust_decimal::Decimal;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::error::ApiError;
use super::portfolio::PortfolioSummary;
use super::{api, owned, require_user};
use crate::hub::{Hub, Subscription as Upstream};

/// How long `events`, caught up, waits for the log's doorbell (`coinfold.log`, rung
/// after each commit of the API's and the alert evaluator's commands) before it looks
/// again anyway: for appends that ring nothing (`coinfold import`) and lost doorbells.
const LOG_POLL: Duration = Duration::from_millis(250);

/// The longest pause of the re-reads after a ring ([`Tail::wait`]).
const RECHECK_UP_TO: Duration = Duration::from_millis(16);

/// A price change.
#[derive(SimpleObject)]
pub struct PriceUpdate {
    pub coin: String,
    pub quote: String,
    pub price: Decimal,
    pub source: String,
    /// The exchange's time of the price.
    pub at: OffsetDateTime,
}

/// An alert of the caller's that fired.
#[derive(SimpleObject)]
pub struct AlertTriggered {
    pub alert_id: ID,
    pub coin: String,
    /// What the evaluator observed (value, reference, previous, at).
    pub observation: Json<Value>,
}

/// An event of the global log.
#[derive(SimpleObject)]
pub struct LogEvent {
    /// Resume with `events(after: globalPosition)` of the last one seen.
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    /// The version as stored (`payload` is brought to the current one).
    pub event_version: String,
    pub payload: Json<Value>,
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
    pub recorded_at: Option<String>,
}

fn hub<'a>(ctx: &Context<'a>) -> &'a Hub {
    ctx.data_unchecked::<Hub>()
}

/// Forwards one upstream channel into `tx` until the receiving stream is gone.
fn forward(mut upstream: Upstream, tx: mpsc::Sender<Arc<str>>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                message = upstream.receiver.recv() => match message {
                    Ok(m) => if tx.send(m).await.is_err() { break },
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "a subscriber fell behind; skipping to the newest");
                    }
                    Err(RecvError::Closed) => break,
                },
                () = tx.closed() => break,
            }
        }
    });
}

/// The messages of `topics`, merged, as a stream.
async fn listen(hub: &Hub, topics: &[String]) -> mpsc::Receiver<Arc<str>> {
    let (tx, rx) = mpsc::channel(256);
    for topic in topics {
        forward(hub.subscribe(topic).await, tx.clone());
    }
    rx
}

fn stream_of<T>(
    rx: mpsc::Receiver<Arc<str>>,
    parse: impl Fn(Value) -> Option<T> + Send + 'static,
) -> impl Stream<Item = T> {
    futures_util::stream::unfold((rx, parse), |(mut rx, parse)| async move {
        while let Some(message) = rx.recv().await {
            if let Some(item) = serde_json::from_str(&message).ok().and_then(&parse) {
                return Some((item, (rx, parse)));
            }
        }
        None
    })
}

fn coins(ctx: &Context<'_>, raw: &[String]) -> Result<Vec<String>, ApiError> {
    let max = ctx.data_unchecked::<LiveSettings>().max_coins;
    if raw.is_empty() || raw.len() > max {
        return Err(ApiError::validation(
            "coins",
            format!("name 1 to {max} coins"),
        ));
    }
    raw.iter()
        .map(|c| {
            coinfold_domain::values::CoinSymbol::parse(c)
                .map(|c| c.as_str().to_owned())
                .map_err(|e| ApiError::validation("coins", e.to_string()))
        })
        .collect()
}

/// The subscriptions one graphql-ws connection has open, and how many it may
/// (`graphql.max_subscriptions_per_connection`): put in the connection's data when it
/// initialises.
#[derive(Clone)]
pub struct Slots {
    open: Arc<AtomicUsize>,
    max: usize,
}

impl Slots {
    pub fn new(max: usize) -> Self {
        Self {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }
}

/// One open subscription's place among its connection's; given back when its stream
/// is dropped (the client completed it, or the connection closed).
struct Slot(Option<Arc<AtomicUsize>>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(open) = &self.0 {
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Slot {
    /// `stream`, holding this slot as long as it lives.
    fn hold<S: Stream + Send + 'static>(self, stream: S) -> impl Stream<Item = S::Item> + use<S> {
        stream.map(move |item| {
            let _held = &self;
            item
        })
    }
}

/// A place for one more subscription on this connection, or VALIDATION when it has
/// as many open as it may. (Without slots, as over HTTP, there is no count.)
fn slot(ctx: &Context<'_>) -> Result<Slot, ApiError> {
    let Some(slots) = ctx.data_opt::<Slots>() else {
        return Ok(Slot(None));
    };
    if slots.open.fetch_add(1, Ordering::SeqCst) >= slots.max {
        slots.open.fetch_sub(1, Ordering::SeqCst);
        return Err(ApiError::validation(
            "subscription",
            format!(
                "at most {} subscriptions per connection: complete one first",
                slots.max
            ),
        ));
    }
    Ok(Slot(Some(slots.open.clone())))
}

#[derive(Default)]
pub struct LiveSubscription;

#[Subscription]
impl LiveSubscription {
    /// Every price change of `coins`, in any quote.
    async fn prices(
        &self,
        ctx: &Context<'_>,
        coins: Vec<String>,
    ) -> Result<impl Stream<Item = PriceUpdate> + use<>, ApiError> {
        let slot = slot(ctx)?;
        let topics: Vec<String> = self::coins(ctx, &coins)?
            .into_iter()
            .map(|c| format!("price.{c}"))
            .collect();
        let rx = listen(hub(ctx), &topics).await;
        Ok(slot.hold(stream_of(rx, |v| {
            Some(PriceUpdate {
                coin: v["coin"].as_str()?.to_owned(),
                quote: v["quote"].as_str()?.to_owned(),
                price: v["price"].as_str()?.parse().ok()?,
                source: v["source"].as_str()?.to_owned(),
                at: OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(v["at"].as_i64()?) * 1_000_000,
                )
                .ok()?,
            })
        })))
    }

    /// Every change of a coin's candles of `interval` (the open candle as it moves).
    async fn candles(
        &self,
        ctx: &Context<'_>,
        coin: String,
        interval: String,
    ) -> Result<impl Stream<Item = Json<Value>> + use<>, ApiError> {
        let slot = slot(ctx)?;
        let coin = self::coins(ctx, &[coin])?.remove(0);
        if !coinfold_projections::models::market::INTERVALS
            .iter()
            .any(|(name, _)| *name == interval)
        {
            return Err(ApiError::validation("interval", "one of 1m, 5m, 1h, 1d"));
        }
        let rx = listen(hub(ctx), &[format!("candle.{coin}.{interval}")]).await;
        Ok(slot.hold(stream_of(rx, |v| Some(Json(v)))))
    }

    /// Every article scored about `coins`.
    async fn sentiment(
        &self,
        ctx: &Context<'_>,
        coins: Vec<String>,
    ) -> Result<impl Stream<Item = Json<Value>> + use<>, ApiError> {
        let slot = slot(ctx)?;
        let topics: Vec<String> = self::coins(ctx, &coins)?
            .into_iter()
            .map(|c| format!("sentiment.{c}"))
            .collect();
        let rx = listen(hub(ctx), &topics).await;
        Ok(slot.hold(stream_of(rx, |v| Some(Json(v)))))
    }

    /// The caller's alerts as they fire (nobody else's).
    async fn alert_triggered(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = AlertTriggered> + use<>, ApiError> {
        let slot = slot(ctx)?;
        let principal = require_user(ctx)?;
        let rx = listen(hub(ctx), &[format!("alert.{}", principal.user_id)]).await;
        Ok(slot.hold(stream_of(rx, |v| {
            Some(AlertTriggered {
                alert_id: ID(v["alert_id"].as_str()?.to_owned()),
                coin: v["coin"].as_str()?.to_owned(),
                observation: Json(v["observation"].clone()),
            })
        })))
    }

    /// One of the caller's portfolios, revalued now and on changes of its holdings or
    /// of a held coin's price: at most one summary per `graphql.portfolio_update_ms`
    /// (1 s by default), and only when one of its figures changed.
    async fn portfolio(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<impl Stream<Item = PortfolioSummary> + use<>, ApiError> {
        let slot = slot(ctx)?;
        let principal = require_user(ctx)?;
        let api = api(ctx);
        let portfolio_id = owned(api, "Portfolio", "portfolio", &id, &principal).await?;
        let pool = api.pool.clone();
        let hub = hub(ctx).clone();
        let (tx, rx) = mpsc::channel(256);
        forward(
            hub.subscribe(&format!("portfolio.{portfolio_id}")).await,
            tx.clone(),
        );
        let state = Revaluation {
            pool,
            hub,
            tx,
            rx,
            portfolio_id,
            coins: BTreeSet::new(),
            every: ctx.data_unchecked::<LiveSettings>().portfolio_every,
            sent: None,
        };
        Ok(slot.hold(futures_util::stream::unfold(
            state,
            |mut state| async move {
                loop {
                    if let Some((sent_at, _)) = &state.sent {
                        state.rx.recv().await?;
                        // Changes within the interval revalue once, at its end.
                        tokio::time::sleep_until(*sent_at + state.every).await;
                        while state.rx.try_recv().is_ok() {}
                    }
                    match queries::portfolio_summary(&state.pool, state.portfolio_id).await {
                        Ok(summary) => {
                            if state
                                .sent
                                .as_ref()
                                .is_some_and(|(_, last)| *last == summary)
                            {
                                // Ticks that moved no figure of this portfolio.
                                continue;
                            }
                            for holding in &summary.holdings {
                                if state.coins.insert(holding.coin.clone()) {
                                    let upstream = state
                                        .hub
                                        .subscribe(&format!("price.{}", holding.coin))
                                        .await;
                                    forward(upstream, state.tx.clone());
                                }
                            }
                            state.sent = Some((tokio::time::Instant::now(), summary.clone()));
                            return Some((PortfolioSummary::from(summary), state));
                        }
                        // Not projected yet: wait for its first notification.
                        Err(queries::QueryError::NotFound) => continue,
                        Err(error) => {
                            tracing::error!(%error, "revaluing a portfolio failed");
                            return None;
                        }
                    }
                }
            },
        )))
    }

    /// The caller's events in the global log after position `after` (0: from the
    /// start), then each as it commits: no gap, no repeat.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 0)] after: i64,
    ) -> Result<impl Stream<Item = LogEvent> + use<>, ApiError> {
        let slot = slot(ctx)?;
        let principal = require_user(ctx)?;
        if after < 0 {
            return Err(ApiError::validation("after", "a position is 0 or more"));
        }
        let pool = api(ctx).pool.clone();
        let doorbell = hub(ctx).subscribe(LOG_TOPIC).await;
        let state = Tail {
            doorbell,
            log: GlobalLog::new(pool.clone()),
            pool,
            user: principal.user_id,
            user_id: principal.user_id.to_string(),
            after,
            ready: VecDeque::new(),
            owners: HashMap::new(),
            recheck: None,
        };
        Ok(slot.hold(futures_util::stream::unfold(
            state,
            |mut state| async move {
                loop {
                    if let Some(event) = state.ready.pop_front() {
                        return Some((event, state));
                    }
                    match state.next_batch().await {
                        Ok(true) => state.recheck = None,
                        Ok(false) => state.wait().await,
                        Err(error) => {
                            tracing::error!(%error, "reading the global log for a subscriber failed");
                            return None;
                        }
                    }
                }
            },
        )))
    }
}

struct Revaluation {
    pool: sqlx::PgPool,
    hub: Hub,
    tx: mpsc::Sender<Arc<str>>,
    rx: mpsc::Receiver<Arc<str>>,
    portfolio_id: Uuid,
    coins: BTreeSet<String>,
    /// The shortest time between two summaries.
    every: Duration,
    /// When the last summary was sent, and what it said (None before the first).
    sent: Option<(tokio::time::Instant, queries::Summary)>,
}

/// How the subscriptions pace what they send.
#[derive(Debug, Clone, Copy)]
pub struct LiveSettings {
    /// The shortest time between two `portfolio(id)` summaries.
    pub portfolio_every: Duration,
    /// The most coins one `prices`, `candles` or `sentiment` subscription may name.
    pub max_coins: usize,
}

struct Tail {
    /// Rings after appends commit; the log is read again then.
    doorbell: Upstream,
    log: GlobalLog,
    pool: sqlx::PgPool,
    user: Uuid,
    /// `user` as the event store spells a User aggregate's id.
    user_id: String,
    after: i64,
    ready: VecDeque<LogEvent>,
    /// After a ring, the pause before reading again if the read found nothing.
    recheck: Option<Duration>,
    /// Whether an aggregate is the user's, by aggregate id (ids are UUIDs, unique
    /// across types), as learnt.
    owners: HashMap<String, bool>,
}

impl Tail {
    /// Waits for the doorbell (at most `LOG_POLL`), then drops the rings that came
    /// meanwhile: the read that follows covers every commit they stand for.
    ///
    /// A commit may become readable only on a later read than the first after its
    /// ring: the log's high-water mark moves past it once every transaction that was in
    /// flight when the mark was taken has ended (ADR 0001), and other writers' (the
    /// projections') transactions often are. So a read that finds nothing after a ring
    /// is repeated after 1, 2, 4, 8 and 16 ms before the doorbell is waited for again;
    /// otherwise the next ring (the next commit) would be what revealed it.
    async fn wait(&mut self) {
        if let Some(pause) = self.recheck
            && pause <= RECHECK_UP_TO
        {
            tokio::time::sleep(pause).await;
            self.recheck = Some(pause * 2);
            return;
        }
        let rang = tokio::time::timeout(LOG_POLL, self.doorbell.receiver.recv()).await;
        if matches!(rang, Ok(Err(RecvError::Closed))) {
            tokio::time::sleep(LOG_POLL).await;
        }
        self.recheck = matches!(rang, Ok(Ok(_) | Err(RecvError::Lagged(_))))
            .then_some(Duration::from_millis(1));
        while matches!(
            self.doorbell.receiver.try_recv(),
            Ok(_) | Err(TryRecvError::Lagged(_))
        ) {}
    }

    /// Reads the next events after the cursor and keeps the user's; false when there
    /// were none.
    async fn next_batch(&mut self) -> anyhow::Result<bool> {
        let events = self.log.read_after(self.after, 500).await?;
        let Some(last) = events.last() else {
            return Ok(false);
        };
        self.after = last.global_position;
        for event in events {
            if self.is_mine(&event).await? {
                self.ready.push_back(log_event(event));
            }
        }
        Ok(true)
    }

    async fn is_mine(&mut self, event: &RecordedEvent) -> anyhow::Result<bool> {
        if event.aggregate_type == "User" {
            return Ok(event.aggregate_id == self.user_id);
        }
        if let Some(mine) = self.owners.get(&event.aggregate_id) {
            return Ok(*mine);
        }
        let owner = history::owner(&self.pool, &event.aggregate_type, &event.aggregate_id).await?;
        let mine = owner == Some(self.user);
        self.owners.insert(event.aggregate_id.clone(), mine);
        Ok(mine)
    }
}

fn log_event(mut event: RecordedEvent) -> LogEvent {
    let payload = upcast_payload(
        &event.aggregate_type,
        &event.event_type,
        &event.event_version,
        std::mem::take(&mut event.payload),
    );
    let meta = |key: &str| {
        event
            .metadata
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    LogEvent {
        actor: meta("actor"),
        correlation_id: meta("correlation_id"),
        recorded_at: meta("recorded_at"),
        global_position: event.global_position,
        aggregate_type: event.aggregate_type,
        aggregate_id: event.aggregate_id,
        sequence: event.sequence,
        event_type: event.event_type,
        event_version: event.event_version,
        payload: Json(payload),
    }
}
