//! Writes what the connectors emit to the topics.
//!
//! One idempotent producer (`enable.idempotence`, `acks=all`, zstd) keeps each key's
//! messages in the order they were sent, without duplicates from its own retries. Ticks
//! are keyed by coin, so one coin's ticks stay in one partition, in order; each carries
//! its [`Tick::dedupe_key`] in a `dedupe-key` header as well, for projections to drop a
//! tick that a reconnect delivered twice.
//!
//! A delivery that fails after librdkafka's own retries stops the producer with an
//! error: the process exits rather than go on with a hole in the stream.
//!
//! Counted as they are handed to the producer: `coinfold_ingest_ticks_total{source}` and
//! `coinfold_dead_letters_total{source}` (the connector).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use base64::Engine as _;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::connector::{DeadLetter, Ingested};
use super::{ARTICLES_TOPIC, COINS_TOPIC, DEAD_LETTER_TOPIC, Source, TICKS_TOPIC};

/// Version of the dead-letter message.
pub const DEAD_LETTER_SCHEMA: u32 = 1;

/// The topic names of one deployment (or one test), with its prefix, made once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestTopics {
    prefix: String,
    ticks: String,
    coins: String,
    articles: String,
    dead_letter: String,
}

impl IngestTopics {
    pub fn new(prefix: &str) -> Self {
        let name = |topic: &str| format!("{prefix}{topic}");
        Self {
            prefix: prefix.to_owned(),
            ticks: name(TICKS_TOPIC),
            coins: name(COINS_TOPIC),
            articles: name(ARTICLES_TOPIC),
            dead_letter: name(DEAD_LETTER_TOPIC),
        }
    }

    /// The full name of a topic such as [`TICKS_TOPIC`].
    pub fn name(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }

    /// Every topic ingest writes, with its partition count.
    pub fn all(&self) -> Vec<(String, i32)> {
        [
            (TICKS_TOPIC, 6),
            (COINS_TOPIC, 1),
            (ARTICLES_TOPIC, 3),
            (DEAD_LETTER_TOPIC, 1),
        ]
        .into_iter()
        .map(|(topic, partitions)| (self.name(topic), partitions))
        .collect()
    }
}

/// The dead-letter message: why, from where, and the raw bytes (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeadLetterMessage {
    pub schema: u32,
    pub source: String,
    pub topic: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_time: OffsetDateTime,
    pub raw_base64: String,
}

impl DeadLetterMessage {
    pub fn from_letter(letter: &DeadLetter) -> Self {
        Self {
            schema: DEAD_LETTER_SCHEMA,
            source: letter.source.to_owned(),
            topic: letter.topic.to_owned(),
            reason: letter.reason.clone(),
            received_time: letter.received_time,
            raw_base64: base64::engine::general_purpose::STANDARD.encode(&letter.raw),
        }
    }

    pub fn raw(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.raw_base64)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("creating the Kafka producer: {0}")]
    Create(KafkaError),
    #[error("creating topic {topic}: {source}")]
    CreateTopic { topic: String, source: KafkaError },
    #[error("delivering to {topic}: {source}")]
    Delivery { topic: String, source: KafkaError },
    #[error("serializing a message: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// The producer's settings: idempotent, every replica acknowledges, zstd.
pub fn producer_config(brokers: &str, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "zstd")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000");
    config
}

/// Creates the topics that do not exist yet (an existing one is left as it is).
pub async fn ensure_topics(brokers: &str, topics: &[(String, i32)]) -> Result<(), ProduceError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(ProduceError::Create)?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|source| ProduceError::CreateTopic {
            topic: "(all)".to_owned(),
            source,
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(ProduceError::CreateTopic {
                    topic,
                    source: KafkaError::AdminOp(code),
                });
            }
        }
    }
    Ok(())
}

/// How many deliveries may be outstanding before the producer waits for the oldest.
const IN_FLIGHT: usize = 10_000;

/// Counters of the producer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Produced {
    pub ticks: u64,
    pub coins: u64,
    pub articles: u64,
    pub dead_letters: u64,
}

/// Writes every message from `rx` until the channel closes and all are delivered.
pub async fn run(
    mut rx: mpsc::Receiver<Ingested>,
    producer: FutureProducer,
    topics: &IngestTopics,
) -> Result<Produced, ProduceError> {
    let mut pending: VecDeque<(&str, DeliveryFuture)> = VecDeque::new();
    let mut produced = Produced::default();
    // One handle per source, made once: not a registry look-up per tick.
    let tick_counters: HashMap<Source, metrics::Counter> =
        [Source::Binance, Source::Coinbase, Source::Coingecko]
            .into_iter()
            .map(|source| {
                let counter =
                    metrics::counter!("coinfold_ingest_ticks_total", "source" => source.as_str());
                (source, counter)
            })
            .collect();
    while let Some(message) = rx.recv().await {
        let (topic, key, payload, headers) = encode(&message, topics)?;
        match &message {
            Ingested::Tick(tick) => {
                produced.ticks += 1;
                if let Some(counter) = tick_counters.get(&tick.source) {
                    counter.increment(1);
                }
            }
            Ingested::Coin(_) => produced.coins += 1,
            Ingested::Article(_) => produced.articles += 1,
            Ingested::DeadLetter(letter) => {
                produced.dead_letters += 1;
                metrics::counter!("coinfold_dead_letters_total", "source" => letter.source)
                    .increment(1);
            }
        }
        let mut record = FutureRecord::to(topic)
            .key(&key)
            .payload(&payload)
            .headers(headers);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push_back((topic, delivery));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    settle_oldest(&mut pending).await?;
                    if pending.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                Err((source, _)) => {
                    return Err(ProduceError::Delivery {
                        topic: topic.to_owned(),
                        source,
                    });
                }
            }
        }
        while pending.len() > IN_FLIGHT {
            settle_oldest(&mut pending).await?;
        }
    }
    while !pending.is_empty() {
        settle_oldest(&mut pending).await?;
    }
    let _ = producer.flush(Duration::from_secs(10));
    Ok(produced)
}

async fn settle_oldest(pending: &mut VecDeque<(&str, DeliveryFuture)>) -> Result<(), ProduceError> {
    let Some((topic, delivery)) = pending.pop_front() else {
        return Ok(());
    };
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((source, _))) => Err(ProduceError::Delivery {
            topic: topic.to_owned(),
            source,
        }),
        Err(_cancelled) => Err(ProduceError::Delivery {
            topic: topic.to_owned(),
            source: KafkaError::Canceled,
        }),
    }
}

type Encoded<'a> = (&'a str, String, Vec<u8>, OwnedHeaders);

fn encode<'a>(message: &Ingested, topics: &'a IngestTopics) -> Result<Encoded<'a>, ProduceError> {
    Ok(match message {
        Ingested::Tick(tick) => (
            &topics.ticks,
            tick.coin.to_string(),
            serde_json::to_vec(tick)?,
            OwnedHeaders::new().insert(Header {
                key: "dedupe-key",
                value: Some(tick.dedupe_key().as_bytes()),
            }),
        ),
        Ingested::Coin(coin) => (
            &topics.coins,
            coin.id.to_string(),
            serde_json::to_vec(&CoinMessage {
                schema: super::COIN_SCHEMA,
                coin,
            })?,
            OwnedHeaders::new(),
        ),
        Ingested::Article(article) => (
            &topics.articles,
            article.id.clone(),
            serde_json::to_vec(article)?,
            OwnedHeaders::new(),
        ),
        Ingested::DeadLetter(letter) => {
            let (body, headers) = dead_letter_parts(letter)?;
            (
                &topics.dead_letter,
                topics.name(letter.topic),
                body,
                headers,
            )
        }
    })
}

/// A dead letter as it goes on `coinfold.dead-letter`: its JSON body, and its reason and
/// source as headers. Every writer of dead letters (ingest, the sentiment worker, the
/// projections) uses this one shape.
pub fn dead_letter_parts(
    letter: &DeadLetter,
) -> Result<(Vec<u8>, OwnedHeaders), serde_json::Error> {
    let body = serde_json::to_vec(&DeadLetterMessage::from_letter(letter))?;
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "reason",
            value: Some(letter.reason.as_bytes()),
        })
        .insert(Header {
            key: "source",
            value: Some(letter.source.as_bytes()),
        });
    Ok((body, headers))
}

/// The message on `coinfold.market.coins`: CoinGecko's metadata of one coin.
#[derive(Serialize)]
struct CoinMessage<'a> {
    schema: u32,
    #[serde(flatten)]
    coin: &'a super::coingecko::CoinMarket,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_keep_the_raw_bytes_and_are_keyed_by_their_topic() {
        let letter = DeadLetter {
            source: "binance",
            topic: TICKS_TOPIC,
            reason: "not JSON: EOF".into(),
            raw: vec![0xff, b'{', 0x00],
            received_time: OffsetDateTime::UNIX_EPOCH,
        };
        let topics = IngestTopics::new("t.");
        let (topic, key, payload, _) = encode(&Ingested::DeadLetter(letter), &topics).unwrap();
        assert_eq!(topic, "t.coinfold.dead-letter");
        assert_eq!(key, "t.coinfold.market.ticks");
        let message: DeadLetterMessage = serde_json::from_slice(&payload).unwrap();
        assert_eq!(message.raw().unwrap(), vec![0xff, b'{', 0x00]);
        assert_eq!(message.reason, "not JSON: EOF");
    }
}
