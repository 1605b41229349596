//! The news connectors: RSS/Atom feeds and NewsAPI, polled on an interval.
//!
//! Each article goes out once per process ([`Seen`] remembers the last ids); across
//! restarts the topic's key (the URL hash) lets consumers drop a repeat. An unreadable
//! feed goes to the dead-letter topic whole, with the reason; an unreadable entry is
//! named in the reason of a dead letter of the feed.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connector::{BackoffSettings, Closed, Emitter, Ingested};
use super::http::{self, Fetched};
use super::news::{self, Article, CoinTagger, Seen};
use super::{ARTICLES_TOPIC, ParseError};

/// One feed to poll.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FeedSettings {
    pub name: String,
    pub url: String,
}

/// `[ingest.news]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct NewsSettings {
    #[serde(default)]
    pub feeds: Vec<FeedSettings>,
    pub every_ms: u64,
    pub request_timeout_ms: u64,
    #[serde(default)]
    pub backoff: BackoffSettings,
    /// `https://newsapi.org`; NewsAPI is polled only when a key is set.
    pub newsapi_endpoint: String,
    #[serde(default)]
    pub newsapi_queries: Vec<String>,
    /// From the environment only (`COINFOLD_INGEST__NEWS__NEWSAPI_KEY`).
    #[serde(default)]
    pub newsapi_key: Option<SecretString>,
}

/// Polls every feed and NewsAPI query in turn, each on its own schedule.
pub struct NewsPoller {
    settings: NewsSettings,
    client: reqwest::Client,
    tagger: CoinTagger,
    seen: Seen,
    /// The SHA-256 of each feed's last answer: an unchanged feed is not read again
    /// (nor its bad entries dead-lettered again).
    last_answer: HashMap<String, [u8; 32]>,
}

impl NewsPoller {
    pub fn new(settings: NewsSettings, tagger: CoinTagger) -> Result<Self, String> {
        let client = http::client(settings.request_timeout_ms)?;
        Ok(Self {
            settings,
            client,
            tagger,
            seen: Seen::new(50_000),
            last_answer: HashMap::new(),
        })
    }

    pub async fn run(mut self, emit: Emitter, cancel: CancellationToken) {
        if let Err(Closed) = self.poll(&emit, &cancel).await {
            tracing::info!(source = emit.source, "producer gone; connector stops");
        }
    }

    async fn poll(&mut self, emit: &Emitter, cancel: &CancellationToken) -> Result<(), Closed> {
        let mut backoff = self.settings.backoff.backoff();
        let max = Duration::from_millis(self.settings.backoff.max_ms);
        let every = Duration::from_millis(self.settings.every_ms.max(1));
        let queries: Vec<String> = if self.settings.newsapi_key.is_some() {
            self.settings.newsapi_queries.clone()
        } else {
            if !self.settings.newsapi_queries.is_empty() {
                tracing::info!("no NewsAPI key is set: NewsAPI is not polled");
            }
            Vec::new()
        };
        let feeds = self.settings.feeds.clone();
        loop {
            let round = Instant::now();
            for feed in &feeds {
                let request = self.client.get(&feed.url);
                match http::fetch("rss", request, &emit.stats, &mut backoff, max).await {
                    Fetched::Body(body) => {
                        let digest: [u8; 32] = Sha256::digest(&body).into();
                        if self.last_answer.insert(feed.url.clone(), digest) == Some(digest) {
                            continue;
                        }
                        let now = OffsetDateTime::now_utc();
                        let read = news::parse_feed(&body, &feed.name, now, &self.tagger);
                        self.pass_on(&body, read, now, emit).await?;
                    }
                    Fetched::Later(delay) => pause(delay, cancel).await,
                }
                if cancel.is_cancelled() {
                    return Ok(());
                }
            }
            for query in &queries {
                let Some(key) = &self.settings.newsapi_key else {
                    break;
                };
                let request = self
                    .client
                    .get(format!(
                        "{}/v2/everything",
                        self.settings.newsapi_endpoint.trim_end_matches('/')
                    ))
                    .query(&[
                        ("q", query.as_str()),
                        ("language", "en"),
                        ("sortBy", "publishedAt"),
                    ])
                    .header("X-Api-Key", key.expose_secret());
                match http::fetch("newsapi", request, &emit.stats, &mut backoff, max).await {
                    Fetched::Body(body) => {
                        let now = OffsetDateTime::now_utc();
                        match news::parse_newsapi(&body, now, &self.tagger) {
                            Ok(Err(error)) => {
                                tracing::warn!(%error, "NewsAPI refused the query");
                                if error.code == "rateLimited" {
                                    super::connector::ConnectorStats::add(
                                        &emit.stats.rate_limited,
                                        1,
                                    );
                                    pause(backoff.next_delay(), cancel).await;
                                }
                            }
                            Ok(Ok(read)) => {
                                self.pass_on(&body, Ok(read), now, emit).await?;
                            }
                            Err(reason) => {
                                self.pass_on(&body, Err(reason), now, emit).await?;
                            }
                        }
                    }
                    Fetched::Later(delay) => pause(delay, cancel).await,
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                () = tokio::time::sleep_until(round + every) => {}
            }
        }
    }

    async fn pass_on(
        &mut self,
        body: &[u8],
        read: Result<(Vec<Article>, Vec<ParseError>), ParseError>,
        now: OffsetDateTime,
        emit: &Emitter,
    ) -> Result<(), Closed> {
        match read {
            Ok((articles, problems)) => {
                for article in articles {
                    if self.seen.first_time(&article.id) {
                        emit.send(Ingested::Article(article)).await?;
                    }
                }
                emit.partly_read(ARTICLES_TOPIC, body, &problems, now).await
            }
            Err(reason) => emit.dead_letter(ARTICLES_TOPIC, body, &reason, now).await,
        }
    }
}

async fn pause(delay: Duration, cancel: &CancellationToken) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = tokio::time::sleep(delay) => {}
    }
}
