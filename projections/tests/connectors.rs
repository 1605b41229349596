//! The connectors against local replay servers: every recorded tick arrives, in order
//! per coin, across a server that is killed and restarted mid-stream; malformed frames
//! become dead letters with a reason; pings are answered; `serverShutdown`, sequence
//! gaps and 429s are handled; a looping playback goes on past the end of its recording
//! with ticks that are new and of now, and a single pass stops. (The same through Kafka
//! is in tests/tests/ingest.rs.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use coinfold_projections::ingest::Tick;
use coinfold_projections::ingest::binance_stream::Binance;
use coinfold_projections::ingest::coinbase_stream::{Coinbase, CoinbaseSettings};
use coinfold_projections::ingest::coingecko_poller::{CoinGecko, CoinGeckoSettings};
use coinfold_projections::ingest::connector::{
    BackoffSettings, DeadLetter, Emitter, Ingested, StatsSnapshot,
};
use coinfold_projections::ingest::replay::{Frame, ReplayFile, Response};
use coinfold_projections::ingest::replay_server::{Passes, PingPolicy, Playback, ReplayServer};
use coinfold_projections::ingest::synth::{self, SynthConfig};
use coinfold_projections::ingest::websocket::{self, WebsocketSettings};
use time::macros::datetime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn recordings(minutes: u32) -> synth::Recordings {
    synth::generate(&SynthConfig {
        start: datetime!(2026-04-07 14:30 UTC),
        minutes,
        seed: 42,
        coins: synth::demo_coins(),
    })
    .unwrap()
}

fn fast_reconnects() -> WebsocketSettings {
    WebsocketSettings {
        connect_timeout_ms: 2_000,
        idle_timeout_ms: 5_000,
        max_connection_age_ms: 3_600_000,
        backoff: BackoffSettings {
            initial_ms: 50,
            max_ms: 400,
        },
    }
}

/// Each coin's ticks as (dedupe key, price), in arrival order.
fn by_coin<'a>(
    ticks: impl IntoIterator<Item = &'a Tick>,
) -> BTreeMap<String, Vec<(String, String)>> {
    let mut coins: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for tick in ticks {
        coins
            .entry(tick.coin.to_string())
            .or_default()
            .push((tick.dedupe_key(), tick.price.to_string()));
    }
    coins
}

/// What the connector sent down its channel.
#[derive(Default)]
struct Received {
    ticks: Vec<Tick>,
    coins: Vec<String>,
    dead_letters: Vec<DeadLetter>,
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One connector against one replay server, until it has sent `expected` ticks.
struct Run {
    received: Received,
    stats: StatsSnapshot,
    playback: Arc<Playback>,
}

/// Plays `file` at `speed`, starts the connector that `connect` makes for the server's
/// URL, and, with `kill_at`, stops the server once that fraction of the expected ticks
/// has arrived and starts a new one on the same port with the same playback.
async fn play<F>(
    file: ReplayFile,
    speed: f64,
    ping: PingPolicy,
    kill_at: Option<f64>,
    connect: impl FnOnce(String, Emitter, CancellationToken) -> F,
) -> Run
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let expected = file.ticks().len();
    let playback = Playback::new(file, speed, ping, Passes::Verbatim);
    let mut server = ReplayServer::start("127.0.0.1:0".parse().unwrap(), playback.clone())
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::channel(100_000);
    let emit = Emitter::new("test", tx);
    let stats = emit.stats.clone();
    let cancel = CancellationToken::new();
    let connector = tokio::spawn(connect(server.url(), emit, cancel.clone()));
    let collector = tokio::spawn(async move {
        let mut received = Received::default();
        while let Some(message) = rx.recv().await {
            match message {
                Ingested::Tick(tick) => received.ticks.push(tick),
                Ingested::Coin(coin) => received.coins.push(coin.symbol.to_string()),
                Ingested::DeadLetter(letter) => received.dead_letters.push(letter),
                Ingested::Article(_) => {}
            }
        }
        received
    });
    if let Some(fraction) = kill_at {
        wait_for("the playback to get going", Duration::from_secs(30), || {
            stats.snapshot().ticks as f64 >= expected as f64 * fraction
        })
        .await;
        let addr: SocketAddr = server.local_addr();
        server.stop().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        server = ReplayServer::start(addr, playback.clone()).await.unwrap();
    }
    wait_for("every tick", Duration::from_secs(60), || {
        stats.snapshot().ticks as usize >= expected
    })
    .await;
    cancel.cancel();
    connector.await.unwrap();
    server.stop().await;
    Run {
        received: collector.await.unwrap(),
        stats: stats.snapshot(),
        playback,
    }
}

fn insert(file: &mut ReplayFile, at: usize, text: &str) {
    let time = file.frames[at].at;
    file.frames.insert(
        at,
        Frame {
            at: time,
            text: text.to_owned(),
        },
    );
}

const NOT_JSON: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTC"#;
const NAN_PRICE: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"NaN","q":"1","f":1,"l":1,"T":1,"m":true,"M":true}}"#;

#[tokio::test]
async fn binance_delivers_every_tick_in_order_across_a_killed_server() {
    let mut file = ReplayFile::read(recordings(1).binance.as_slice()).unwrap();
    insert(&mut file, 40, NOT_JSON);
    insert(&mut file, 120, NAN_PRICE);
    let expected = file.ticks();
    let run = play(
        file,
        20.0,
        PingPolicy::default(),
        Some(0.5),
        |url, emit, cancel| websocket::run(Binance::new(url), fast_reconnects(), emit, cancel),
    )
    .await;

    assert_eq!(
        by_coin(&run.received.ticks),
        by_coin(&expected),
        "every tick, in order per coin"
    );
    let reasons: Vec<&str> = run
        .received
        .dead_letters
        .iter()
        .map(|d| d.reason.as_str())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].starts_with("not JSON"), "{reasons:?}");
    assert!(reasons[1].contains("NaN"), "{reasons:?}");
    assert_eq!(run.received.dead_letters[1].raw, NAN_PRICE.as_bytes());
    assert!(run.stats.reconnects >= 1, "{:?}", run.stats);
    println!(
        "binance: {} ticks over {} connections, {} dead letters",
        run.received.ticks.len(),
        run.stats.connections,
        run.stats.dead_letters
    );
}

#[tokio::test]
async fn binance_answers_pings_and_reconnects_on_server_shutdown() {
    let mut file = ReplayFile::read(recordings(1).binance.as_slice()).unwrap();
    let middle = file.frames.len() / 2;
    insert(
        &mut file,
        middle,
        r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1633998523963}}"#,
    );
    let expected = file.ticks();
    // A ping every 50 ms, and a client that has not answered within 200 ms is dropped.
    let ping = PingPolicy {
        every: Duration::from_millis(50),
        pong_timeout: Duration::from_millis(200),
    };
    let run = play(file, 15.0, ping, None, |url, emit, cancel| {
        websocket::run(Binance::new(url), fast_reconnects(), emit, cancel)
    })
    .await;
    assert_eq!(by_coin(&run.received.ticks), by_coin(&expected));
    assert_eq!(
        run.playback.connections(),
        2,
        "one reconnect, for the shutdown; none for a missed pong"
    );
    assert!(run.playback.pongs() >= 20, "{} pongs", run.playback.pongs());
}

#[tokio::test]
async fn coinbase_subscribes_counts_a_gap_and_survives_a_killed_server() {
    let mut file = ReplayFile::read(recordings(1).coinbase.as_slice()).unwrap();
    // Lose one message a quarter of the way in: a gap of one.
    let lost = file.frames.len() / 4;
    file.frames.remove(lost);
    insert(
        &mut file,
        lost + 10,
        r#"{"channel":"market_trades","timestamp":"2026-04-07T14:30:10Z","events":[{"type":"update","trades":[{"trade_id":"1","product_id":"BTC-USD","price":"-5","size":"1","side":"BUY","time":"2026-04-07T14:30:10Z"}]}]}"#,
    );
    let expected = file.ticks();
    let products = synth::demo_coins()
        .iter()
        .map(|c| format!("{}-USD", c.symbol))
        .collect();
    let run = play(
        file,
        20.0,
        PingPolicy::default(),
        Some(0.6),
        |url, emit, cancel| {
            let coinbase = Coinbase::new(&CoinbaseSettings {
                endpoint: url,
                product_ids: products,
                channels: vec!["market_trades".into(), "ticker".into()],
                websocket: fast_reconnects(),
            })
            .unwrap();
            websocket::run(coinbase, fast_reconnects(), emit, cancel)
        },
    )
    .await;
    assert_eq!(by_coin(&run.received.ticks), by_coin(&expected));
    assert_eq!(
        (run.stats.sequence_gaps, run.stats.missed_messages),
        (1, 1),
        "{:?}",
        run.stats
    );
    assert!(run.stats.reconnects >= 1);
    assert_eq!(run.received.dead_letters.len(), 1);
    assert!(
        run.received.dead_letters[0].reason.contains("price"),
        "{:?}",
        run.received.dead_letters[0]
    );
}

#[tokio::test]
async fn coingecko_backs_off_on_429_and_delivers_every_price_once() {
    let mut file = ReplayFile::read(recordings(3).coingecko.as_slice()).unwrap();
    let third = file
        .responses
        .iter()
        .enumerate()
        .filter(|(_, r)| r.path() == "/api/v3/simple/price")
        .map(|(i, _)| i)
        .nth(2)
        .unwrap();
    let limited = Response {
        at: file.responses[third].at,
        get: file.responses[third].get.clone(),
        status: 429,
        headers: [("retry-after".to_owned(), "1".to_owned())].into(),
        body: r#"{"status":{"error_code":429,"error_message":"You've exceeded the Rate Limit."}}"#
            .into(),
    };
    file.responses.insert(third + 1, limited);
    let expected = file.ticks();
    assert_eq!(expected.len(), 70, "7 answers × 5 coins × 2 currencies");
    let coins = file.coingecko_request().coins;
    let run = play(
        file,
        30.0,
        PingPolicy::default(),
        Some(0.5),
        |url, emit, cancel| {
            let poller = CoinGecko::new(CoinGeckoSettings {
                endpoint: url,
                coins,
                currencies: vec!["usd".into(), "eur".into()],
                price_every_ms: 50,
                markets_every_ms: 500,
                market_pages: 1,
                request_timeout_ms: 2_000,
                backoff: BackoffSettings {
                    initial_ms: 50,
                    max_ms: 1_000,
                },
                api_key: None,
            })
            .unwrap();
            poller.run(emit, cancel)
        },
    )
    .await;
    assert_eq!(by_coin(&run.received.ticks), by_coin(&expected));
    assert_eq!(run.stats.rate_limited, 1);
    let mut metadata = run.received.coins.clone();
    metadata.sort();
    metadata.dedup();
    assert_eq!(
        metadata,
        ["ADA", "BTC", "DOGE", "ETH", "SOL"],
        "coin metadata"
    );
    assert!(run.received.dead_letters.is_empty());
}

#[tokio::test]
async fn news_passes_each_article_once_backs_off_on_429_and_dead_letters_bad_entries() {
    use coinfold_projections::ingest::news_poller::{FeedSettings, NewsPoller, NewsSettings};
    use coinfold_projections::ingest::replay::{Feed, Header, REPLAY_FORMAT};

    let t0 = datetime!(2026-04-07 14:30 UTC);
    let at = |s: i64| t0 + time::Duration::seconds(s);
    let newsapi = |s: i64, status: u16, body: &str| Response {
        at: at(s),
        get: "/v2/everything?q=bitcoin&language=en&sortBy=publishedAt".into(),
        status,
        headers: BTreeMap::new(),
        body: body.into(),
    };
    let ok = r#"{"status":"ok","totalResults":2,"articles":[
        {"source":{"id":null,"name":"CoinDesk"},"author":null,"title":"Bitcoin ETF inflows hit a record","description":null,"url":"https://x.io/1?utm_source=newsapi","urlToImage":null,"publishedAt":"2026-04-07T14:00:00Z","content":null},
        {"source":{"id":null,"name":"Decrypt"},"author":"A","title":"Solana outage halts block production","description":"SOL slips","url":"https://x.io/2","urlToImage":null,"publishedAt":"2026-04-07T14:10:00Z","content":null}]}"#;
    let rss = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>
        <item><title>Bitcoin ETF inflows hit a record</title><link>https://x.io/1</link></item>
        <item><description>an entry with no title and no link</description></item>
        <item><title>Ether staking deposits climb</title><link>https://x.io/3</link></item>
        </channel></rss>"#;
    let file = ReplayFile {
        header: Header {
            replay: REPLAY_FORMAT,
            feed: Feed::Http,
            url: "https://newsapi.org".into(),
            recorded_at: t0,
            generated: Some("written for this test".into()),
        },
        sends: vec![],
        frames: vec![],
        responses: vec![
            newsapi(
                0,
                429,
                r#"{"status":"error","code":"rateLimited","message":"You have made too many requests recently."}"#,
            ),
            newsapi(0, 200, ok),
            newsapi(1, 200, ok),
            Response {
                at: at(0),
                get: "/feed.xml".into(),
                status: 200,
                headers: BTreeMap::new(),
                body: rss.into(),
            },
        ],
    };
    let playback = Playback::new(file, 10.0, PingPolicy::default(), Passes::Verbatim);
    let server = ReplayServer::start("127.0.0.1:0".parse().unwrap(), playback.clone())
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::channel(1_000);
    let emit = Emitter::new("news", tx);
    let stats = emit.stats.clone();
    let cancel = CancellationToken::new();
    let poller = NewsPoller::new(
        NewsSettings {
            feeds: vec![FeedSettings {
                name: "feed".into(),
                url: format!("{}/feed.xml", server.url()),
            }],
            every_ms: 50,
            request_timeout_ms: 2_000,
            backoff: BackoffSettings {
                initial_ms: 50,
                max_ms: 200,
            },
            newsapi_endpoint: server.url(),
            newsapi_queries: vec!["bitcoin".into()],
            newsapi_key: Some("test-key".to_owned().into()),
        },
        coinfold_projections::ingest::news::CoinTagger::default_coins(),
    )
    .unwrap();
    let task = tokio::spawn(poller.run(emit, cancel.clone()));
    wait_for("every response", Duration::from_secs(20), || {
        playback.finished()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    task.await.unwrap();
    server.stop().await;
    let mut titles = Vec::new();
    let mut letters = Vec::new();
    while let Ok(message) = rx.try_recv() {
        match message {
            Ingested::Article(article) => titles.push((article.title, article.coins.len())),
            Ingested::DeadLetter(letter) => letters.push(letter.reason),
            other => panic!("unexpected {other:?}"),
        }
    }
    titles.sort();
    assert_eq!(
        titles,
        vec![
            ("Bitcoin ETF inflows hit a record".to_owned(), 1),
            ("Ether staking deposits climb".to_owned(), 1),
            ("Solana outage halts block production".to_owned(), 1),
        ],
        "each article once, though two polls and a feed carried it"
    );
    assert!(stats.snapshot().rate_limited >= 1);
    assert!(
        !letters.is_empty() && letters.iter().all(|r| r.contains("no title or no link")),
        "{letters:?}"
    );
}

/// The agg trade ids of Binance ticks, in arrival order.
fn agg_ids(ticks: &[Tick]) -> Vec<u64> {
    ticks
        .iter()
        .filter_map(|t| t.trade_id.as_deref()?.strip_prefix("agg-")?.parse().ok())
        .collect()
}

/// Runs the Binance connector against `playback` until `done` holds for its ticks.
async fn binance_until(
    playback: Arc<Playback>,
    what: &str,
    mut done: impl FnMut(&[Tick]) -> bool,
) -> Vec<Tick> {
    let server = ReplayServer::start("127.0.0.1:0".parse().unwrap(), playback)
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::channel(100_000);
    let cancel = CancellationToken::new();
    let connector = tokio::spawn(websocket::run(
        Binance::new(server.url()),
        fast_reconnects(),
        Emitter::new("test", tx),
        cancel.clone(),
    ));
    let mut ticks = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(&ticks) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {} ticks",
            ticks.len()
        );
        match tokio::time::timeout(Duration::from_millis(20), rx.recv()).await {
            Ok(Some(Ingested::Tick(tick))) => ticks.push(tick),
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => panic!("the connector stopped"),
        }
    }
    cancel.cancel();
    connector.await.unwrap();
    server.stop().await;
    ticks
}

/// A one-minute recording with a `serverShutdown` in the middle: the socket closes
/// halfway through every pass.
fn binance_with_a_shutdown() -> ReplayFile {
    let mut file = ReplayFile::read(recordings(1).binance.as_slice()).unwrap();
    let middle = file.frames.len() / 2;
    insert(
        &mut file,
        middle,
        r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1775572230000}}"#,
    );
    file
}

/// Each tick's exchange time is when it was sent: within `seconds` of when it arrived.
fn assert_of_now(ticks: &[Tick], seconds: f64) {
    for tick in ticks {
        let behind = (tick.received_time - tick.exchange_time).as_seconds_f64();
        assert!(behind.abs() <= seconds, "{behind} s: {tick:?}");
    }
}

#[tokio::test]
async fn a_looping_replay_goes_on_past_its_end_with_new_ticks_of_now() {
    let file = binance_with_a_shutdown();
    let per_pass = file.ticks().len();
    let trades_per_pass = agg_ids(&file.ticks()).len();
    // A minute at 60 times the speed: a pass a second.
    let playback = Playback::new(file, 60.0, PingPolicy::default(), Passes::Forever);
    let ticks = binance_until(playback.clone(), "three passes", |ticks| {
        ticks.len() >= 3 * per_pass + 10
    })
    .await;

    // No tick of a pass has the key of a tick of a pass before (within one, the
    // recording's own klines share keys: their E is the candle's start).
    let mut seen = std::collections::HashSet::new();
    for (pass, chunk) in ticks.chunks(per_pass).enumerate() {
        let keys: std::collections::HashSet<String> = chunk.iter().map(Tick::dedupe_key).collect();
        assert!(
            keys.iter().all(|key| !seen.contains(key)),
            "pass {pass} repeats a key of an earlier pass"
        );
        seen.extend(keys);
    }
    // Each pass plays every trade once, under ids greater than the pass before's: no
    // frame is played twice or skipped when the socket closes or a pass begins.
    let mut last = 0;
    for chunk in ticks.chunks(per_pass).take(3) {
        let mut ids = agg_ids(chunk);
        assert_eq!(ids.len(), trades_per_pass);
        ids.sort_unstable();
        assert!(ids[0] > last, "{} after {last}", ids[0]);
        for pair in ids.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "agg ids one after another");
        }
        last = ids[ids.len() - 1];
    }
    // A kline's E is its candle's start, up to a minute of recording (1 s here)
    // before it is sent.
    assert_of_now(&ticks, 1.5);
    assert!(playback.pass() >= 3, "pass {}", playback.pass());
    assert!(
        playback.connections() >= 4,
        "the connector came back after each pass's serverShutdown: {}",
        playback.connections()
    );
    assert!(!playback.finished());
}

#[tokio::test]
async fn a_single_pass_stops_at_the_end_of_its_recording() {
    let file = binance_with_a_shutdown();
    let per_pass = file.ticks().len();
    let playback = Playback::new(file, 60.0, PingPolicy::default(), Passes::Once);
    let ticks = binance_until(playback.clone(), "one pass and a pause", {
        let mut ended: Option<tokio::time::Instant> = None;
        move |ticks| {
            assert!(ticks.len() <= per_pass, "more ticks than one pass holds");
            if ticks.len() < per_pass {
                return false;
            }
            // The end: wait as long as another pass would take.
            let ended = *ended.get_or_insert_with(tokio::time::Instant::now);
            ended.elapsed() > Duration::from_millis(1_500)
        }
    })
    .await;
    assert_eq!(ticks.len(), per_pass);
    assert!(playback.finished());
    assert_of_now(&ticks, 1.5);
}

#[tokio::test]
async fn a_looping_http_replay_answers_past_its_end_with_the_price_going_on() {
    let file = ReplayFile::read(recordings(1).coingecko.as_slice()).unwrap();
    let prices: Vec<&Response> = file
        .responses
        .iter()
        .filter(|r| r.path() == "/api/v3/simple/price")
        .collect();
    let (per_pass, get) = (prices.len(), prices[0].get.clone());
    let playback = Playback::new(file, 60.0, PingPolicy::default(), Passes::Forever);
    let server = ReplayServer::start("127.0.0.1:0".parse().unwrap(), playback)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    // Each new answer, as bitcoin's (last_updated_at, usd).
    let mut answers: Vec<(i64, f64)> = Vec::new();
    let mut last_body = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while answers.len() <= 3 * per_pass {
        assert!(tokio::time::Instant::now() < deadline, "{answers:?}");
        let body = client
            .get(format!("{}{get}", server.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if body != last_body {
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            let bitcoin = &value["bitcoin"];
            let updated = bitcoin["last_updated_at"].as_i64().unwrap();
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            assert!((now - updated).abs() <= 2, "{updated} asked at {now}");
            answers.push((updated, bitcoin["usd"].as_f64().unwrap()));
            last_body = body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
    assert!(answers.windows(2).all(|w| w[1].0 >= w[0].0), "{answers:?}");
    for pass in 1..=3 {
        let boundary = pass * per_pass;
        assert_eq!(
            answers[boundary].1,
            answers[boundary - 1].1,
            "pass {pass} starts at the price the one before ended: {answers:?}"
        );
    }
    assert_ne!(answers[per_pass + 1].1, answers[1].1, "{answers:?}");
}
