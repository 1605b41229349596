//! The sentiment worker: `coinfold.news.articles` in, `coinfold.news.sentiment` out.
//!
//! Each article is scored once and written once per coin it is tagged with, keyed by
//! the coin; an article tagged with no coin is scored for nobody and skipped. The
//! consumer stores no offset on its own (`enable.auto.commit=false`,
//! `enable.auto.offset.store=false`): an article's offset is committed only after its
//! scores are delivered, so a crash repeats an article rather than lose it, and a
//! reader drops the repeat by (article id, coin). An article that does not parse goes
//! to the dead-letter topic with the reason, and the worker goes on.

use std::time::Duration;

use coinfold_domain::values::CoinSymbol;
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::{Label, Scorer};
use crate::ingest::connector::DeadLetter;
use crate::ingest::news::Article;
use crate::ingest::producer::dead_letter_parts;
use crate::ingest::{ARTICLES_TOPIC, SENTIMENT_TOPIC};

/// Version of the [`ScoredArticle`] message.
pub const SENTIMENT_SCHEMA: u32 = 1;

/// One article's sentiment for one coin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredArticle {
    pub schema: u32,
    pub article_id: String,
    pub coin: CoinSymbol,
    pub title: String,
    pub url: String,
    pub source: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub published_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub scored_at: OffsetDateTime,
    /// VADER with the crypto overlay, in [-1, 1].
    pub score: f64,
    /// Plain VADER, kept for comparison.
    pub vader: f64,
    pub label: Label,
}

/// Scores an article's title and summary, once per tagged coin.
pub fn score_article(
    scorer: &Scorer,
    article: &Article,
    now: OffsetDateTime,
) -> Vec<ScoredArticle> {
    let text = match &article.summary {
        Some(summary) => format!("{}. {summary}", article.title),
        None => article.title.clone(),
    };
    let score = scorer.score(&text);
    article
        .coins
        .iter()
        .map(|coin| ScoredArticle {
            schema: SENTIMENT_SCHEMA,
            article_id: article.id.clone(),
            coin: coin.clone(),
            title: article.title.clone(),
            url: article.url.clone(),
            source: article.source.clone(),
            published_at: article.published_at,
            scored_at: now,
            score: score.compound,
            vader: score.vader,
            label: score.label,
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("creating a Kafka client: {0}")]
    Create(KafkaError),
    #[error("subscribing to {topic}: {source}")]
    Subscribe { topic: String, source: KafkaError },
    #[error("consuming: {0}")]
    Consume(KafkaError),
    #[error("delivering to {topic}: {source}")]
    Delivery { topic: String, source: KafkaError },
    #[error("committing: {0}")]
    Commit(KafkaError),
    #[error("serializing: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Where the worker reads and writes.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub brokers: String,
    pub topic_prefix: String,
    pub group_id: String,
}

pub struct SentimentWorker {
    consumer: StreamConsumer,
    producer: FutureProducer,
    scorer: Scorer,
    prefix: String,
}

impl SentimentWorker {
    pub fn new(settings: &WorkerSettings, producer: FutureProducer) -> Result<Self, WorkerError> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("group.id", &settings.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .map_err(WorkerError::Create)?;
        let topic = format!("{}{ARTICLES_TOPIC}", settings.topic_prefix);
        consumer
            .subscribe(&[&topic])
            .map_err(|source| WorkerError::Subscribe { topic, source })?;
        Ok(Self {
            consumer,
            producer,
            scorer: Scorer::crypto(),
            prefix: settings.topic_prefix.clone(),
        })
    }

    /// Scores articles until `cancel` fires; returns how many it scored.
    pub async fn run(self, cancel: CancellationToken) -> Result<u64, WorkerError> {
        let sentiment = format!("{}{SENTIMENT_TOPIC}", self.prefix);
        let dead_letter = format!("{}{}", self.prefix, crate::ingest::DEAD_LETTER_TOPIC);
        let mut scored = 0;
        loop {
            let message = tokio::select! {
                () = cancel.cancelled() => return Ok(scored),
                message = self.consumer.recv() => message.map_err(WorkerError::Consume)?,
            };
            let payload = message.payload().unwrap_or_default();
            let now = OffsetDateTime::now_utc();
            match serde_json::from_slice::<Article>(payload) {
                Ok(article) => {
                    for score in score_article(&self.scorer, &article, now) {
                        let body = serde_json::to_vec(&score)?;
                        let key = score.coin.to_string();
                        self.deliver(&sentiment, &key, &body, OwnedHeaders::new())
                            .await?;
                    }
                    scored += 1;
                }
                Err(error) => {
                    let reason = format!("not an article: {error}");
                    tracing::warn!(%reason, "article to the dead-letter topic");
                    metrics::counter!("coinfold_dead_letters_total", "source" => "sentiment")
                        .increment(1);
                    let (body, headers) = dead_letter_parts(&DeadLetter {
                        source: "sentiment",
                        topic: ARTICLES_TOPIC,
                        reason,
                        raw: payload.to_vec(),
                        received_time: now,
                    })?;
                    let key = format!("{}{ARTICLES_TOPIC}", self.prefix);
                    self.deliver(&dead_letter, &key, &body, headers).await?;
                }
            }
            self.consumer
                .commit_message(&message, CommitMode::Async)
                .map_err(WorkerError::Commit)?;
        }
    }

    async fn deliver(
        &self,
        topic: &str,
        key: &str,
        body: &[u8],
        headers: OwnedHeaders,
    ) -> Result<(), WorkerError> {
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(body)
            .headers(headers);
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(source, _)| WorkerError::Delivery {
                topic: topic.to_owned(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::news::{ARTICLE_SCHEMA, article_id};

    #[test]
    fn an_article_is_scored_once_per_tagged_coin() {
        let article = Article {
            schema: ARTICLE_SCHEMA,
            id: article_id("https://x.io/1"),
            url: "https://x.io/1".into(),
            title: "Bridge exploit drains $80M in ETH and SOL".into(),
            summary: None,
            source: "X".into(),
            author: None,
            published_at: None,
            fetched_at: OffsetDateTime::UNIX_EPOCH,
            feed: "rss:x".into(),
            coins: vec![
                CoinSymbol::parse("ETH").unwrap(),
                CoinSymbol::parse("SOL").unwrap(),
            ],
        };
        let scores = score_article(&Scorer::crypto(), &article, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(scores.len(), 2);
        assert!(
            scores
                .iter()
                .all(|s| s.label == Label::Negative && s.score < -0.3)
        );
        let untagged = Article {
            coins: vec![],
            ..article
        };
        assert!(score_article(&Scorer::crypto(), &untagged, OffsetDateTime::UNIX_EPOCH).is_empty());
    }
}
