//! Streams in, end to end: the three market connectors and the news poller read local
//! replay servers, and what reaches the broker is checked by a plain Kafka consumer.
//!
//! - every recorded tick is on `coinfold.market.ticks`, in order per source and coin,
//!   none lost, although every server is killed mid-stream and started again;
//! - each malformed line is on `coinfold.dead-letter`, with its reason and raw bytes;
//! - the news feed's articles are scored onto `coinfold.news.sentiment` per coin.

use std::collections::BTreeMap;
use std::time::Duration;

use coinfold_projections::ingest::coinbase_stream::CoinbaseSettings;
use coinfold_projections::ingest::coingecko_poller::CoinGeckoSettings;
use coinfold_projections::ingest::connector::BackoffSettings;
use coinfold_projections::ingest::news_poller::{FeedSettings, NewsSettings};
use coinfold_projections::ingest::producer::DeadLetterMessage;
use coinfold_projections::ingest::replay::{Frame, ReplayFile};
use coinfold_projections::ingest::replay_server::{Passes, PingPolicy, Playback, ReplayServer};
use coinfold_projections::ingest::run::{self, KafkaTarget, Plan};
use coinfold_projections::ingest::synth::{self, SynthConfig};
use coinfold_projections::ingest::websocket::WebsocketSettings;
use coinfold_projections::ingest::{DEAD_LETTER_TOPIC, SENTIMENT_TOPIC, TICKS_TOPIC, Tick};
use coinfold_projections::sentiment::worker::ScoredArticle;
use coinfold_tests::{TestTopics, consume, test_settings};
use rdkafka::message::{Headers, Message};
use tokio_util::sync::CancellationToken;

const SPEED: f64 = 20.0;

fn websocket() -> WebsocketSettings {
    WebsocketSettings {
        connect_timeout_ms: 2_000,
        idle_timeout_ms: 5_000,
        max_connection_age_ms: 3_600_000,
        backoff: BackoffSettings {
            initial_ms: 50,
            max_ms: 500,
        },
    }
}

fn by_source_and_coin<'a>(
    ticks: impl IntoIterator<Item = &'a Tick>,
) -> BTreeMap<(String, String), Vec<String>> {
    let mut map: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for tick in ticks {
        map.entry((tick.source.to_string(), tick.coin.to_string()))
            .or_default()
            .push(format!("{} @ {}", tick.dedupe_key(), tick.price));
    }
    map
}

async fn start(file: ReplayFile) -> ReplayServer {
    let playback = Playback::new(file, SPEED, PingPolicy::default(), Passes::Verbatim);
    ReplayServer::start(([127, 0, 0, 1], 0).into(), playback)
        .await
        .expect("a replay server")
}

#[tokio::test]
async fn recorded_feeds_reach_the_topics_in_order_through_killed_servers() {
    let topics = TestTopics::new();
    let settings = test_settings(&topics);
    let recordings = synth::generate(&SynthConfig {
        start: time::macros::datetime!(2026-04-07 14:30 UTC),
        minutes: 2,
        seed: 11,
        coins: synth::demo_coins(),
    })
    .unwrap();

    // Binance, with a truncated frame and a "NaN" price; Coinbase, with a wrong type.
    let mut binance_file = ReplayFile::read(recordings.binance.as_slice()).unwrap();
    let malformed_binance = [
        r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCU"#,
        r#"{"stream":"ethusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"ETHUSDT","a":7,"p":"NaN","q":"1","f":1,"l":1,"T":1,"m":false,"M":true}}"#,
    ];
    for (n, text) in malformed_binance.iter().enumerate() {
        let at = 50 + n * 400;
        let time = binance_file.frames[at].at;
        binance_file.frames.insert(
            at,
            Frame {
                at: time,
                text: (*text).to_owned(),
            },
        );
    }
    let mut coinbase_file = ReplayFile::read(recordings.coinbase.as_slice()).unwrap();
    let malformed_coinbase = r#"{"channel":"market_trades","timestamp":"2026-04-07T14:30:10Z","sequence_num":"x","events":[]}"#;
    let time = coinbase_file.frames[300].at;
    coinbase_file.frames.insert(
        300,
        Frame {
            at: time,
            text: malformed_coinbase.to_owned(),
        },
    );
    let gecko_file = ReplayFile::read(recordings.coingecko.as_slice()).unwrap();
    let news_file = ReplayFile::read(recordings.news.as_slice()).unwrap();

    let expected: Vec<Tick> = [&binance_file, &coinbase_file, &gecko_file]
        .iter()
        .flat_map(|file| file.ticks())
        .collect();
    let ids = gecko_file.coingecko_request().coins;
    assert_eq!(ids.len(), 5);

    let binance_frames = binance_file.frames.len();
    let coinbase_frames = coinbase_file.frames.len();
    let binance_server = start(binance_file).await;
    let coinbase_server = start(coinbase_file).await;
    let gecko_server = start(gecko_file).await;
    let news_server = start(news_file).await;
    let plan = Plan {
        binance: Some((binance_server.url(), websocket())),
        coinbase: Some(CoinbaseSettings {
            endpoint: coinbase_server.url(),
            product_ids: synth::demo_coins()
                .iter()
                .map(|c| format!("{}-USD", c.symbol))
                .collect(),
            channels: vec!["market_trades".into(), "ticker".into()],
            websocket: websocket(),
        }),
        coingecko: Some(CoinGeckoSettings {
            endpoint: gecko_server.url(),
            coins: ids,
            currencies: vec!["usd".into(), "eur".into()],
            price_every_ms: 100,
            markets_every_ms: 1_000,
            market_pages: 1,
            request_timeout_ms: 2_000,
            backoff: BackoffSettings {
                initial_ms: 50,
                max_ms: 500,
            },
            api_key: None,
        }),
        news: Some(NewsSettings {
            feeds: ["coindesk", "cointelegraph"]
                .map(|feed| FeedSettings {
                    name: feed.to_owned(),
                    url: format!("{}/{feed}/rss.xml", news_server.url()),
                })
                .to_vec(),
            every_ms: 200,
            request_timeout_ms: 2_000,
            backoff: BackoffSettings {
                initial_ms: 50,
                max_ms: 500,
            },
            newsapi_endpoint: "http://127.0.0.1:9".into(),
            newsapi_queries: vec![],
            newsapi_key: None,
        }),
        sentiment_group: Some(topics.group("sentiment")),
    };
    let kafka = KafkaTarget {
        brokers: settings.kafka.brokers.clone(),
        client_id: topics.group("ingest"),
        topic_prefix: topics.prefix.clone(),
    };
    let cancel = CancellationToken::new();
    let ingest = tokio::spawn({
        let kafka = kafka.clone();
        let cancel = cancel.clone();
        async move { run::run(plan, &kafka, cancel, Duration::from_secs(1)).await }
    });

    // Kill every server halfway through, and start it again on the same port.
    let mut servers = Vec::new();
    for (server, frames) in [
        (binance_server, binance_frames),
        (coinbase_server, coinbase_frames),
        (gecko_server, 0),
    ] {
        let playback = server.playback().clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while frames > 0 && playback.frames_sent() < frames / 2
            || frames == 0 && playback.requests() < 8
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the playback did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let addr = server.local_addr();
        server.stop().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        servers.push(
            ReplayServer::start(addr, playback)
                .await
                .expect("restarted"),
        );
    }

    let ticks = consume(
        &kafka.brokers,
        &topics,
        &topics.topic(TICKS_TOPIC),
        expected.len(),
        Duration::from_secs(120),
    )
    .await;
    let received: Vec<Tick> = ticks
        .iter()
        .map(|m| serde_json::from_slice(m.payload().unwrap_or_default()).expect("a tick"))
        .collect();
    for (message, tick) in ticks.iter().zip(&received) {
        assert_eq!(
            message.key(),
            Some(tick.coin.as_str().as_bytes()),
            "keyed by coin"
        );
        let header = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "dedupe-key"));
        assert_eq!(
            header.and_then(|h| h.value),
            Some(tick.dedupe_key().as_bytes())
        );
    }
    assert_eq!(
        by_source_and_coin(&received),
        by_source_and_coin(&expected),
        "every recorded tick, in order per source and coin"
    );

    let letters = consume(
        &kafka.brokers,
        &topics,
        &topics.topic(DEAD_LETTER_TOPIC),
        3,
        Duration::from_secs(30),
    )
    .await;
    let mut letters: Vec<DeadLetterMessage> = letters
        .iter()
        .map(|m| serde_json::from_slice(m.payload().unwrap_or_default()).expect("a dead letter"))
        .collect();
    letters.sort_by(|a, b| a.raw_base64.cmp(&b.raw_base64));
    let mut raws: Vec<Vec<u8>> = letters.iter().map(|l| l.raw().unwrap()).collect();
    raws.sort();
    let mut malformed: Vec<Vec<u8>> = malformed_binance
        .iter()
        .chain([&malformed_coinbase])
        .map(|t| t.as_bytes().to_vec())
        .collect();
    malformed.sort();
    assert_eq!(raws, malformed, "the raw bytes of each malformed line");
    for letter in &letters {
        assert!(!letter.reason.is_empty());
        assert_eq!(letter.topic, TICKS_TOPIC);
        println!("dead letter from {}: {}", letter.source, letter.reason);
    }

    // 2 minutes of news: the items published by then, each tagged with one coin here.
    let scored = consume(
        &kafka.brokers,
        &topics,
        &topics.topic(SENTIMENT_TOPIC),
        5,
        Duration::from_secs(60),
    )
    .await;
    let mut scored_coins = Vec::new();
    for message in &scored {
        let score: ScoredArticle =
            serde_json::from_slice(message.payload().unwrap_or_default()).unwrap();
        assert_eq!(message.key(), Some(score.coin.as_str().as_bytes()));
        scored_coins.push(score.coin.to_string());
        println!(
            "sentiment {:>6.3} {:?} {} | {}",
            score.score, score.label, score.coin, score.title
        );
    }

    scored_coins.sort();
    assert_eq!(
        scored_coins,
        ["ADA", "BTC", "DOGE", "ETH", "SOL"],
        "the first five headlines name one coin each"
    );

    cancel.cancel();
    let report = ingest.await.unwrap().expect("ingest ran");
    for server in servers {
        server.stop().await;
    }
    let reconnects: u64 = report.connectors.iter().map(|(_, s)| s.reconnects).sum();
    assert!(
        reconnects >= 2,
        "both websockets reconnected: {:?}",
        report.connectors
    );
    for websocket in ["binance", "coinbase"] {
        let stats = report
            .connectors
            .iter()
            .find(|(name, _)| *name == websocket)
            .map(|(_, s)| s.reconnects);
        assert!(
            stats.is_some_and(|r| r >= 1),
            "{websocket} reconnected after its server was killed: {:?}",
            report.connectors
        );
    }
    println!(
        "ingest through kafka: {} ticks, {} dead letters, {} articles, {} scored; {:?}",
        report.produced.ticks,
        report.produced.dead_letters,
        report.produced.articles,
        report.articles_scored,
        report.connectors
    );
}
