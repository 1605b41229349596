//! The ingest role: every configured connector, the producer and the sentiment worker,
//! in one process, until it is told to stop.
//!
//! A [`Plan`] says which connectors run and where they connect: [`Plan::live`] from the
//! configuration (the real endpoints), [`Plan::replay`] from recorded files, each
//! played by its own [`ReplayServer`] on loopback, so that the same connectors read the
//! recording as they would read the exchange.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::SENTIMENT_TOPIC;
use super::binance_stream::{Binance, BinanceSettings};
use super::coinbase_stream::{Coinbase, CoinbaseSettings};
use super::coingecko_poller::{CoinGecko, CoinGeckoSettings};
use super::connector::{ConnectorStats, Emitter};
use super::news::CoinTagger;
use super::news_poller::{FeedSettings, NewsPoller, NewsSettings};
use super::producer::{self, IngestTopics, ProduceError, Produced};
use super::replay::{Feed, GeckoRequest, ReplayFile};
use super::replay_server::{Passes, PingPolicy, Playback, ReplayServer};
use super::websocket::{self, WebsocketSettings};
use crate::sentiment::worker::{SentimentWorker, WorkerSettings};

/// `[ingest]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    /// Which live connectors run: `binance`, `coinbase`, `coingecko`, `news`.
    pub sources: Vec<String>,
    /// Also run the sentiment worker in this process.
    pub sentiment: bool,
    pub sentiment_group: String,
    pub binance: BinanceSettings,
    pub coinbase: CoinbaseSettings,
    pub coingecko: CoinGeckoSettings,
    pub news: NewsSettings,
}

/// The connectors, by the name their counters and dead letters carry.
pub const SOURCES: [&str; 4] = ["binance", "coinbase", "coingecko", "news"];

impl IngestSettings {
    /// What is wrong with the settings of the enabled connectors.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for source in &self.sources {
            if !SOURCES.contains(&source.as_str()) {
                problems.push(format!(
                    "ingest.sources: {source:?} is not one of {}",
                    SOURCES.join(", ")
                ));
            }
        }
        if let Err(problem) = Plan::live(self) {
            problems.push(problem);
        }
        if self.sentiment && self.sentiment_group.trim().is_empty() {
            problems.push("ingest.sentiment_group must not be empty".to_owned());
        }
        problems
    }
}

/// Which connectors run, and where they connect.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub binance: Option<(String, WebsocketSettings)>,
    pub coinbase: Option<CoinbaseSettings>,
    pub coingecko: Option<CoinGeckoSettings>,
    pub news: Option<NewsSettings>,
    /// The sentiment worker's consumer group, when it runs.
    pub sentiment_group: Option<String>,
}

impl Plan {
    /// The configured connectors against their real endpoints.
    pub fn live(settings: &IngestSettings) -> Result<Plan, String> {
        let on = |name: &str| settings.sources.iter().any(|s| s == name);
        let mut plan = Plan::default();
        if on("binance") {
            plan.binance = Some((settings.binance.url()?, settings.binance.websocket));
        }
        if on("coinbase") {
            Coinbase::new(&settings.coinbase)?;
            plan.coinbase = Some(settings.coinbase.clone());
        }
        if on("coingecko") {
            CoinGecko::new(settings.coingecko.clone())?;
            plan.coingecko = Some(settings.coingecko.clone());
        }
        if on("news") {
            plan.news = Some(settings.news.clone());
        }
        if settings.sentiment {
            plan.sentiment_group = Some(settings.sentiment_group.clone());
        }
        Ok(plan)
    }

    /// The connectors that read `files` (replay files, or folders of `*.jsonl`),
    /// each played by its own server on loopback at `speed`, as often as `passes`
    /// says. The servers run until [`ReplayServer::stop`]: the caller keeps them and
    /// stops them.
    pub async fn replay(
        files: &[PathBuf],
        speed: f64,
        passes: Passes,
        settings: &IngestSettings,
    ) -> Result<(Plan, Vec<ReplayServer>), String> {
        let mut plan = Plan {
            sentiment_group: settings.sentiment.then(|| settings.sentiment_group.clone()),
            ..Plan::default()
        };
        let mut servers = Vec::new();
        for path in expand(files)? {
            let file = ReplayFile::open(&path).map_err(|e| e.to_string())?;
            let feed = file.header.feed;
            let playback = Playback::new(file, speed, PingPolicy::default(), passes);
            let server = ReplayServer::start(([127, 0, 0, 1], 0).into(), playback.clone())
                .await
                .map_err(|e| format!("starting a replay server for {}: {e}", path.display()))?;
            let file = playback.file();
            match feed {
                Feed::Binance => {
                    plan.binance = Some((server.url(), settings.binance.websocket));
                }
                Feed::Coinbase => {
                    let mut products = Vec::new();
                    let mut channels = Vec::new();
                    for send in &file.sends {
                        let message: serde_json::Value = serde_json::from_str(send)
                            .map_err(|e| format!("{}: send line: {e}", path.display()))?;
                        if let Some(list) = message.get("product_ids").and_then(|p| p.as_array()) {
                            products
                                .extend(list.iter().filter_map(|p| p.as_str().map(str::to_owned)));
                        }
                        if let Some(channel) = message.get("channel").and_then(|c| c.as_str()) {
                            channels.push(channel.to_owned());
                        }
                    }
                    products.sort();
                    products.dedup();
                    plan.coinbase = Some(CoinbaseSettings {
                        endpoint: server.url(),
                        product_ids: products,
                        channels,
                        websocket: settings.coinbase.websocket,
                    });
                }
                Feed::Http => {
                    let mut feeds = Vec::new();
                    for response in &file.responses {
                        let path = response.path();
                        if !path.starts_with("/api/") {
                            let feed = FeedSettings {
                                name: path.trim_start_matches('/').replace('/', "-"),
                                url: format!("{}{path}", server.url()),
                            };
                            if !feeds.contains(&feed) {
                                feeds.push(feed);
                            }
                        }
                    }
                    let GeckoRequest { coins, currencies } = file.coingecko_request();
                    if !coins.is_empty() {
                        plan.coingecko = Some(CoinGeckoSettings {
                            endpoint: server.url(),
                            coins,
                            currencies: if currencies.is_empty() {
                                settings.coingecko.currencies.clone()
                            } else {
                                currencies
                            },
                            // The recording answers at its own pace; ask often enough.
                            price_every_ms: (5_000.0 / speed).max(20.0) as u64,
                            markets_every_ms: (60_000.0 / speed).max(100.0) as u64,
                            api_key: None,
                            ..settings.coingecko.clone()
                        });
                    }
                    if !feeds.is_empty() {
                        plan.news = Some(NewsSettings {
                            feeds,
                            every_ms: (30_000.0 / speed).max(50.0) as u64,
                            newsapi_key: None,
                            ..settings.news.clone()
                        });
                    }
                }
            }
            servers.push(server);
        }
        Ok((plan, servers))
    }
}

/// Files as given, and the `*.jsonl` files of folders, sorted.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Err("no replay files given".to_owned());
    }
    Ok(files)
}

/// Where the topics are.
#[derive(Debug, Clone)]
pub struct KafkaTarget {
    pub brokers: String,
    pub client_id: String,
    pub topic_prefix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Produce(#[from] ProduceError),
    #[error("{0}")]
    Connector(String),
    #[error("the sentiment worker: {0}")]
    Sentiment(#[from] crate::sentiment::worker::WorkerError),
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct Report {
    pub produced: Produced,
    pub connectors: Vec<(&'static str, super::connector::StatsSnapshot)>,
    pub articles_scored: u64,
}

/// Every topic the streams use (ingest's and the sentiment worker's), with its
/// partition count; ingest creates those missing.
pub fn stream_topics(prefix: &str) -> Vec<(String, i32)> {
    let topics = IngestTopics::new(prefix);
    let mut all = topics.all();
    all.push((topics.name(SENTIMENT_TOPIC), 3));
    all
}

/// Runs the plan until `cancel` fires, then lets the producer deliver what it holds.
/// Every `report_every`, each connector's counters are logged.
pub async fn run(
    plan: Plan,
    kafka: &KafkaTarget,
    cancel: CancellationToken,
    report_every: Duration,
) -> Result<Report, IngestError> {
    let topics = IngestTopics::new(&kafka.topic_prefix);
    producer::ensure_topics(&kafka.brokers, &stream_topics(&kafka.topic_prefix)).await?;
    let producer: FutureProducer = producer::producer_config(&kafka.brokers, &kafka.client_id)
        .create()
        .map_err(ProduceError::Create)?;
    let (tx, rx) = mpsc::channel(10_000);
    let mut tasks = tokio::task::JoinSet::new();
    let mut stats: Vec<(&'static str, Arc<ConnectorStats>)> = Vec::new();
    if let Some((url, settings)) = plan.binance {
        let emit = Emitter::new("binance", tx.clone());
        stats.push(("binance", emit.stats.clone()));
        tasks.spawn(websocket::run(
            Binance::new(url),
            settings,
            emit,
            cancel.clone(),
        ));
    }
    if let Some(settings) = plan.coinbase {
        let coinbase = Coinbase::new(&settings).map_err(IngestError::Connector)?;
        let emit = Emitter::new("coinbase", tx.clone());
        stats.push(("coinbase", emit.stats.clone()));
        tasks.spawn(websocket::run(
            coinbase,
            settings.websocket,
            emit,
            cancel.clone(),
        ));
    }
    if let Some(settings) = plan.coingecko {
        let poller = CoinGecko::new(settings).map_err(IngestError::Connector)?;
        let emit = Emitter::new("coingecko", tx.clone());
        stats.push(("coingecko", emit.stats.clone()));
        tasks.spawn(poller.run(emit, cancel.clone()));
    }
    if let Some(settings) = plan.news {
        let poller = NewsPoller::new(settings, CoinTagger::default_coins())
            .map_err(IngestError::Connector)?;
        let emit = Emitter::new("news", tx.clone());
        stats.push(("news", emit.stats.clone()));
        tasks.spawn(poller.run(emit, cancel.clone()));
    }
    drop(tx);
    let sentiment = match plan.sentiment_group {
        Some(group_id) => {
            let worker = SentimentWorker::new(
                &WorkerSettings {
                    brokers: kafka.brokers.clone(),
                    topic_prefix: kafka.topic_prefix.clone(),
                    group_id,
                },
                producer.clone(),
            )?;
            Some(tokio::spawn(worker.run(cancel.clone())))
        }
        None => None,
    };
    let reporter = {
        let stats = stats.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(report_every);
            every.tick().await;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = every.tick() => {}
                }
                for (source, stats) in &stats {
                    let s = stats.snapshot();
                    tracing::info!(
                        source,
                        messages = s.messages,
                        ticks = s.ticks,
                        dead_letters = s.dead_letters,
                        reconnects = s.reconnects,
                        sequence_gaps = s.sequence_gaps,
                        rate_limited = s.rate_limited,
                        "connector"
                    );
                }
            }
        })
    };
    let produced = producer::run(rx, producer, &topics).await;
    while tasks.join_next().await.is_some() {}
    reporter.abort();
    let articles_scored = match sentiment {
        Some(task) => task
            .await
            .map_err(|e| IngestError::Connector(format!("the sentiment worker panicked: {e}")))??,
        None => 0,
    };
    Ok(Report {
        produced: produced?,
        connectors: stats
            .iter()
            .map(|(s, stats)| (*s, stats.snapshot()))
            .collect(),
        articles_scored,
    })
}
