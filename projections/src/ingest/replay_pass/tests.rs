use std::collections::BTreeMap;

use coinfold_domain::values::{CoinId, CoinSymbol, QuoteCurrency};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

use super::rewrite::{HEARTBEAT_TIME, rewrite_elements};
use super::*;
use crate::ingest::binance::{self, BinanceMessage};
use crate::ingest::coinbase::{self, CoinbaseBody, SequenceTracker};
use crate::ingest::news::{self, CoinTagger};
use crate::ingest::synth::{self, SynthConfig};
use crate::ingest::{Tick, coingecko};

const SPEED: f64 = 10.0;

fn recordings() -> synth::Recordings {
    synth::generate(&SynthConfig {
        start: datetime!(2026-04-07 14:30 UTC),
        minutes: 1,
        seed: 7,
        coins: synth::demo_coins(),
    })
    .unwrap()
}

fn pass(number: u64, started: OffsetDateTime) -> Pass {
    Pass {
        number,
        started,
        speed: SPEED,
    }
}

/// Every frame of passes `0..passes` as it is sent, by pass.
fn frames(file: &ReplayFile, passes: u64, started: OffsetDateTime) -> Vec<Vec<String>> {
    let looping = Looping::new(file);
    (0..passes)
        .map(|n| {
            file.frames
                .iter()
                .map(|f| looping.frame(&f.text, &pass(n, started)))
                .collect()
        })
        .collect()
}

fn within(at: OffsetDateTime, of: OffsetDateTime, seconds: f64) -> bool {
    (at - of).as_seconds_f64().abs() <= seconds
}

/// Each coin's prices in order.
fn prices(ticks: &[Tick]) -> BTreeMap<String, Vec<Decimal>> {
    let mut coins: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
    for tick in ticks {
        coins
            .entry(format!("{}-{}", tick.coin, tick.quote))
            .or_default()
            .push(tick.price.value());
    }
    coins
}

/// The price of each coin goes on from one pass to the next: the first of a pass is
/// the last of the pass before.
fn assert_continued(passes: &[Vec<Tick>]) {
    for pair in passes.windows(2) {
        let (before, after) = (prices(&pair[0]), prices(&pair[1]));
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        );
        for (coin, list) in &before {
            assert_eq!(
                after[coin].first(),
                list.last(),
                "{coin}: the next pass starts where this one ended"
            );
        }
    }
}

fn trade_ids(ticks: &[Tick]) -> Vec<u64> {
    ticks
        .iter()
        .filter_map(|t| t.trade_id.as_deref())
        .map(|id| id.trim_start_matches("agg-").parse().unwrap())
        .collect()
}

fn times(ticks: &[Tick]) -> (OffsetDateTime, OffsetDateTime) {
    let first = ticks.iter().map(|t| t.exchange_time).min().unwrap();
    let last = ticks.iter().map(|t| t.exchange_time).max().unwrap();
    (first, last)
}

/// Later times, greater ids: nothing of a pass looks like a message of the one before.
fn assert_later_and_greater(passes: &[Vec<Tick>]) {
    for pair in passes.windows(2) {
        assert!(times(&pair[1]).0 > times(&pair[0]).1, "later times");
        let before = trade_ids(&pair[0]).into_iter().max().unwrap();
        let after = trade_ids(&pair[1]).into_iter().min().unwrap();
        assert!(after > before, "trade id {after} after {before}");
    }
}

#[test]
fn binance_passes_go_on_at_later_times_with_greater_ids_from_the_last_price() {
    let file = ReplayFile::read(recordings().binance.as_slice()).unwrap();
    let started = OffsetDateTime::now_utc();
    let passes: Vec<Vec<Tick>> = frames(&file, 3, started)
        .iter()
        .map(|pass| {
            pass.iter()
                .flat_map(|text| match binance::parse(text.as_bytes(), started) {
                    Ok(BinanceMessage::Ticks(ticks)) => ticks,
                    other => panic!("{other:?}: {text}"),
                })
                .collect()
        })
        .collect();

    // Moved to now: the first message is sent as the playback starts, the last a
    // minute later at ten times the speed.
    let (first, last) = times(&passes[0]);
    assert!(within(first, started, 0.5), "{first} vs {started}");
    assert!(within(last, started + Duration::seconds(6), 0.5), "{last}");
    assert_later_and_greater(&passes);
    assert_continued(&passes);

    // Odd passes mirror the path, even ones play it as recorded: the level stays.
    let recorded = prices(&file.ticks());
    let (played, mirrored, again) = (prices(&passes[0]), prices(&passes[1]), prices(&passes[2]));
    assert_eq!(played, recorded);
    assert_eq!(again, recorded);
    for (coin, list) in &recorded {
        let constant = list[0] * list[list.len() - 1];
        for (price, mirror) in list.iter().zip(&mirrored[coin]) {
            let error = (price * mirror - constant).abs() / constant;
            assert!(error < Decimal::new(1, 3), "{coin}: {price} ↔ {mirror}");
        }
    }

    // Highs stay above lows, and prices keep Binance's width.
    for text in frames(&file, 2, started).pop().unwrap() {
        let value: Value = serde_json::from_str(&text).unwrap();
        let data = &value["data"];
        let candle = if data["e"] == "kline" {
            &data["k"]
        } else {
            data
        };
        if let (Some(high), Some(low)) = (candle["h"].as_str(), candle["l"].as_str()) {
            assert!(
                decimal_of(&candle["h"]) >= decimal_of(&candle["l"]),
                "{text}"
            );
            assert_eq!(high.split('.').nth(1).map(str::len), Some(8), "{text}");
            assert_eq!(low.split('.').nth(1).map(str::len), Some(8), "{text}");
        }
    }
}

#[test]
fn coinbase_passes_go_on_counting_sequence_numbers_and_heartbeats() {
    let file = ReplayFile::read(recordings().coinbase.as_slice()).unwrap();
    let started = OffsetDateTime::now_utc();
    let mut sequence = SequenceTracker::default();
    let mut heartbeats = Vec::new();
    let mut passes = Vec::new();
    for (number, pass) in frames(&file, 3, started).into_iter().enumerate() {
        let mut ticks = Vec::new();
        for text in pass {
            let message = coinbase::parse(text.as_bytes(), started).unwrap();
            assert_eq!(
                sequence.observe(message.sequence_num.unwrap()),
                None,
                "no gap, no repeat: {text}"
            );
            match message.body {
                CoinbaseBody::Ticks(read) => ticks.extend(read),
                CoinbaseBody::Heartbeat { counter } => heartbeats.push(counter),
                _ => {}
            }
            let value: Value = serde_json::from_str(&text).unwrap();
            for ticker in value["events"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|e| e["tickers"].as_array().into_iter().flatten())
            {
                let number = |field: &str| decimal_of(&ticker[field]).unwrap();
                assert!(number("best_bid") < number("best_ask"), "{text}");
                assert!(number("low_24_h") <= number("high_24_h"), "{text}");
            }
            if let Some(at) = value["events"][0]["current_time"].as_str() {
                let at = OffsetDateTime::parse(at, HEARTBEAT_TIME).unwrap();
                let ends = 6.1 * number as f64 + 6.5;
                assert!(within(at, started, ends), "{at}");
            }
        }
        passes.push(ticks);
    }
    assert!(
        heartbeats.windows(2).all(|w| w[1] == w[0] + 1),
        "heartbeats count on"
    );
    let (first, _) = times(&passes[0]);
    assert!(within(first, started, 0.5), "{first} vs {started}");
    assert_later_and_greater(&passes);
    assert_continued(&passes);
}

#[test]
fn coingecko_passes_continue_prices_and_scale_market_caps() {
    let file = ReplayFile::read(recordings().coingecko.as_slice()).unwrap();
    let looping = Looping::new(&file);
    let started = OffsetDateTime::now_utc();
    let ids: BTreeMap<CoinId, CoinSymbol> = synth::demo_coins()
        .iter()
        .map(|c| {
            (
                CoinId::parse(c.gecko_id).unwrap(),
                CoinSymbol::parse(c.symbol).unwrap(),
            )
        })
        .collect();
    let currencies = ["USD", "EUR"].map(|c| QuoteCurrency::parse(c).unwrap());
    let mut passes = Vec::new();
    for number in 0..3 {
        let mut ticks = Vec::new();
        for response in &file.responses {
            let body = looping.body(response, &pass(number, started));
            let value: Value = serde_json::from_str(&body).unwrap();
            if response.path() == SIMPLE_PRICE {
                ticks.extend(
                    coingecko::parse_simple_price(body.as_bytes(), started, &ids, &currencies)
                        .unwrap(),
                );
                // A market cap moves with its price: the supply stays.
                let recorded: Value = serde_json::from_str(&response.body).unwrap();
                let supply = |v: &Value| {
                    v["bitcoin"]["usd_market_cap"].as_f64().unwrap()
                        / v["bitcoin"]["usd"].as_f64().unwrap()
                };
                let error = supply(&value) / supply(&recorded) - 1.0;
                assert!(error.abs() < 1e-3, "{body}");
            } else {
                coingecko::parse_markets(body.as_bytes()).unwrap();
                for coin in value.as_array().unwrap() {
                    assert!(coin["high_24h"].as_f64() >= coin["low_24h"].as_f64());
                    let updated = coin["last_updated"].as_str().unwrap();
                    let updated = OffsetDateTime::parse(updated, &Rfc3339).unwrap();
                    assert!(within(updated, started, 6.5 + 6.1 * number as f64));
                }
            }
        }
        passes.push(ticks);
    }
    let (first, last) = times(&passes[0]);
    assert!(within(first, started, 1.0), "{first} vs {started}");
    assert!(within(last, started + Duration::seconds(6), 1.0), "{last}");
    // In whole seconds, the first answer of a pass may share the second of the last
    // one before (with its price, as it goes on from it).
    for pair in passes.windows(2) {
        assert!(times(&pair[1]).0 >= times(&pair[0]).1, "later times");
    }
    assert_continued(&passes);
}

#[test]
fn news_of_a_later_pass_are_new_articles_published_now() {
    let file = ReplayFile::read(recordings().news.as_slice()).unwrap();
    let looping = Looping::new(&file);
    let started = OffsetDateTime::now_utc();
    let tagger = CoinTagger::default_coins();
    let articles = |number: u64| {
        let mut articles = BTreeMap::new();
        for response in &file.responses {
            let body = looping.body(response, &pass(number, started));
            let (read, problems) =
                news::parse_feed(body.as_bytes(), "feed", started, &tagger).unwrap();
            assert!(problems.is_empty(), "{problems:?}");
            for article in read {
                articles.insert(article.title.clone(), article);
            }
        }
        articles
    };
    let (first, second) = (articles(0), articles(1));
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (title, article) in &first {
        let again = &second[title];
        assert_ne!(article.id, again.id, "a new article: {}", again.url);
        let (at, later) = (article.published_at.unwrap(), again.published_at.unwrap());
        assert!(within(at, started, 8.0), "{title}: {at}");
        assert!(later > at + Duration::seconds(5), "{title}: {later}");
    }
    assert!(second.values().all(|a| a.url.contains("played=")));
}

#[test]
fn newsapi_articles_get_new_links_and_times() {
    let response = Response {
        at: datetime!(2026-04-07 14:30 UTC),
        get: "/v2/everything?q=bitcoin".into(),
        status: 200,
        headers: BTreeMap::new(),
        body: r#"{"status":"ok","articles":[{"title":"Bitcoin ETF inflows","url":"https://x.io/1?id=2#top","publishedAt":"2026-04-07T14:29:00Z"}]}"#.into(),
    };
    let file = ReplayFile {
        header: crate::ingest::replay::Header {
            replay: crate::ingest::replay::REPLAY_FORMAT,
            feed: Feed::Http,
            url: "https://newsapi.org".into(),
            recorded_at: response.at,
            generated: None,
        },
        sends: vec![],
        frames: vec![],
        responses: vec![response.clone()],
    };
    let looping = Looping::new(&file);
    let started = datetime!(2030-01-01 00:00 UTC);
    let body: Value = serde_json::from_str(&looping.body(&response, &pass(3, started))).unwrap();
    let article = &body["articles"][0];
    // Passes of a second recorded, at ten times the speed: under a second each.
    let serial = started.unix_timestamp() + 3;
    assert_eq!(
        article["url"],
        format!("https://x.io/1?id=2&played={serial}#top")
    );
    // Three periods of one second at ten times the speed, and a minute before the start.
    assert_eq!(article["publishedAt"], "2029-12-31T23:59:54.3Z");
}

#[test]
fn a_playback_started_again_later_does_not_repeat_the_trade_ids_of_the_first() {
    let file = ReplayFile::read(recordings().coinbase.as_slice()).unwrap();
    let ticks = |number: u64, started: OffsetDateTime| -> Vec<Tick> {
        let looping = Looping::new(&file);
        file.frames
            .iter()
            .filter_map(|f| {
                let text = looping.frame(&f.text, &pass(number, started));
                match coinbase::parse(text.as_bytes(), started).ok()?.body {
                    CoinbaseBody::Ticks(ticks) => Some(ticks),
                    _ => None,
                }
            })
            .flatten()
            .collect()
    };
    // The first playback got to its third pass (6.1 s each); the second starts a
    // second after that pass began.
    let first = OffsetDateTime::now_utc();
    let second = first + Duration::milliseconds(12_200 + 1_000);
    let before = trade_ids(&ticks(2, first)).into_iter().max().unwrap();
    let after = trade_ids(&ticks(0, second)).into_iter().min().unwrap();
    assert!(after > before, "trade id {after} after {before}");
}

#[test]
fn what_does_not_read_is_sent_as_recorded() {
    let file = ReplayFile::read(recordings().binance.as_slice()).unwrap();
    let looping = Looping::new(&file);
    let odd = pass(1, OffsetDateTime::now_utc());
    for text in [
        r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTC"#,
        "not json at all",
    ] {
        assert_eq!(looping.frame(text, &odd), text);
    }
    // A price that does not read stays; the rest of the message still moves on.
    let nan = r#"{"stream":"x","data":{"e":"aggTrade","E":1775572200000,"s":"BTCUSDT","a":1,"p":"NaN","q":"1","f":1,"l":1,"T":1775572200000,"m":true,"M":true}}"#;
    let value: Value = serde_json::from_str(&looping.frame(nan, &odd)).unwrap();
    assert_eq!(value["data"]["p"], "NaN");
    assert_eq!(value["data"]["m"], true);
    assert_ne!(value["data"]["E"], 1_775_572_200_000_i64);
}

#[test]
fn recordings_made_together_loop_in_step() {
    let files = recordings();
    let periods: Vec<Duration> = [
        &files.binance,
        &files.coinbase,
        &files.coingecko,
        &files.news,
    ]
    .map(|bytes| Timeline::new(&ReplayFile::read(bytes.as_slice()).unwrap()).period)
    .to_vec();
    assert_eq!(periods, vec![Duration::seconds(61); 4]);
}

#[test]
fn xml_elements_are_rewritten_inside_cdata_and_escaped_text() {
    let xml = r#"<item><link>https://a.io/x?utm_source=rss</link><linkage>k</linkage><link href="y"/><guid isPermaLink="true"><![CDATA[https://a.io/x?a=1]]></guid></item>"#;
    let changed = rewrite_elements(xml, "link", &|text, escaped| {
        Some(format!(
            "{text}{}pass=1",
            if escaped { "&amp;" } else { "&" }
        ))
    });
    let changed = rewrite_elements(&changed, "guid", &|text, escaped| {
        Some(format!(
            "{text}{}pass=1",
            if escaped { "&amp;" } else { "&" }
        ))
    });
    assert_eq!(
        changed,
        r#"<item><link>https://a.io/x?utm_source=rss&amp;pass=1</link><linkage>k</linkage><link href="y"/><guid isPermaLink="true"><![CDATA[https://a.io/x?a=1&pass=1]]></guid></item>"#
    );
}
