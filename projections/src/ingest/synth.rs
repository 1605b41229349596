//! The shipped market recordings, made from a price model (`coinfold replay generate`).
//!
//! No network reaches this project's machines, so the recordings in `recordings/` are
//! generated, in the exact message formats of FEEDS.md, from a model that every file's
//! header names:
//!
//! - one mid price per coin follows a jump diffusion (Merton): geometric Brownian
//!   motion in 100 ms steps with an annualized volatility of about three times the
//!   coin's real one (so that a 12-minute demo visibly moves), plus jumps arriving three
//!   times an hour with a normal size of σ = 0.5 %;
//! - each exchange has its own trades: Poisson arrivals at a per-coin rate, the price
//!   the mid ± a one-basis-point half spread (Coinbase's USD mid sits 2 bp under
//!   Binance's USDT one), rounded to the coin's tick; a log-normal size; a fair coin
//!   for the taker's side;
//! - Binance sends each trade as an aggTrade, the 1-minute candle every 2 s and when it
//!   closes, and a 24hrMiniTicker every second; Coinbase batches the trades of each
//!   100 ms into one market_trades message, sends a ticker at most once a second per
//!   product, a heartbeat every second, and numbers every message; CoinGecko answers
//!   `/simple/price` every 30 s and `/coins/markets` every 2 minutes, at the last mid.
//!
//! The generator is deterministic (its own SplitMix64 stream, seeded), so the files can
//! be re-made and reviewed as a diff.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::replay::{Feed, Header, REPLAY_FORMAT, ReplayWriter, Response};

/// One coin of the model.
#[derive(Debug, Clone)]
pub struct SynthCoin {
    pub symbol: &'static str,
    pub gecko_id: &'static str,
    pub name: &'static str,
    pub price: f64,
    pub annual_volatility: f64,
    /// Trades per second on each exchange.
    pub trades_per_second: f64,
    pub price_places: usize,
    pub typical_size: f64,
    pub size_places: usize,
    pub rank: u32,
    pub circulating_supply: f64,
    pub max_supply: Option<f64>,
    /// 24 h volume in the coin at the start.
    pub volume_24h: f64,
}

/// BTC, ETH, SOL, ADA and DOGE as of spring 2026, roughly.
pub fn demo_coins() -> Vec<SynthCoin> {
    let coin =
        |symbol, gecko_id, name, price, trades_per_second, price_places, typical_size| SynthCoin {
            symbol,
            gecko_id,
            name,
            price,
            annual_volatility: 2.0,
            trades_per_second,
            price_places,
            typical_size,
            size_places: 0,
            rank: 0,
            circulating_supply: 0.0,
            max_supply: None,
            volume_24h: 0.0,
        };
    vec![
        SynthCoin {
            size_places: 5,
            rank: 1,
            circulating_supply: 19_700_000.0,
            max_supply: Some(21_000_000.0),
            volume_24h: 25_000.0,
            annual_volatility: 1.8,
            ..coin("BTC", "bitcoin", "Bitcoin", 68_900.0, 1.6, 2, 0.02)
        },
        SynthCoin {
            size_places: 4,
            rank: 2,
            circulating_supply: 120_100_000.0,
            volume_24h: 310_000.0,
            annual_volatility: 2.2,
            ..coin("ETH", "ethereum", "Ethereum", 3_500.0, 1.3, 2, 0.25)
        },
        SynthCoin {
            size_places: 3,
            rank: 5,
            circulating_supply: 455_000_000.0,
            volume_24h: 3_100_000.0,
            annual_volatility: 2.6,
            ..coin("SOL", "solana", "Solana", 150.0, 1.1, 2, 3.0)
        },
        SynthCoin {
            size_places: 1,
            rank: 9,
            circulating_supply: 35_400_000_000.0,
            max_supply: Some(45_000_000_000.0),
            volume_24h: 520_000_000.0,
            annual_volatility: 2.4,
            ..coin("ADA", "cardano", "Cardano", 0.45, 0.6, 4, 600.0)
        },
        SynthCoin {
            size_places: 0,
            rank: 8,
            circulating_supply: 145_000_000_000.0,
            volume_24h: 1_500_000_000.0,
            annual_volatility: 3.0,
            ..coin("DOGE", "dogecoin", "Dogecoin", 0.16, 0.7, 5, 2_500.0)
        },
    ]
}

#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub start: OffsetDateTime,
    pub minutes: u32,
    pub seed: u64,
    pub coins: Vec<SynthCoin>,
}

impl SynthConfig {
    /// What made the files in `recordings/`: 12 minutes from 2026-04-07 14:30 UTC,
    /// seed 7, the demo coins.
    pub fn shipped() -> Self {
        Self {
            start: time::macros::datetime!(2026-04-07 14:30 UTC),
            minutes: 12,
            seed: 7,
            coins: demo_coins(),
        }
    }
}

/// The recordings, as file contents.
#[derive(Debug, Clone)]
pub struct Recordings {
    pub binance: Vec<u8>,
    pub coinbase: Vec<u8>,
    pub coingecko: Vec<u8>,
    /// Two RSS feeds, answered every minute with the items published so far.
    pub news: Vec<u8>,
}

/// SplitMix64: small, fast and the same on every platform and version.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub(super) fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    pub(super) fn poisson(&mut self, mean: f64) -> u32 {
        let limit = (-mean).exp();
        let mut product = self.unit();
        let mut count = 0;
        while product > limit && count < 1_000 {
            product *= self.unit();
            count += 1;
        }
        count
    }
}

const STEP_MS: i64 = 100;
const SECONDS_PER_YEAR: f64 = 365.25 * 24.0 * 3600.0;

fn fixed(value: f64, places: usize) -> String {
    format!("{value:.places$}")
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

struct Trade {
    at: OffsetDateTime,
    coin: usize,
    id: u64,
    price: f64,
    size: f64,
    taker_buys: bool,
}

/// A candle being built from one exchange's trades.
#[derive(Clone)]
struct Candle {
    open_time: i64,
    first_id: u64,
    last_id: u64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    quote_volume: f64,
    taker_buy_volume: f64,
    taker_buy_quote: f64,
    trades: u64,
}

/// What a 24 h ticker reports for one coin on one exchange.
#[derive(Clone, Copy)]
struct Day {
    open: f64,
    high: f64,
    low: f64,
    volume: f64,
    quote_volume: f64,
}

struct Exchange {
    next_id: u64,
    basis: f64,
    trades: Vec<Trade>,
}

impl Exchange {
    fn trade(&mut self, rng: &mut Rng, coin: &SynthCoin, index: usize, mid: f64, step_start: i64) {
        let count = rng.poisson(coin.trades_per_second * STEP_MS as f64 / 1000.0);
        let mut offsets: Vec<i64> = (0..count)
            .map(|_| (rng.unit() * STEP_MS as f64) as i64)
            .collect();
        offsets.sort_unstable();
        for offset in offsets {
            let taker_buys = rng.unit() < 0.5;
            let half_spread = mid * 0.0001;
            let raw = mid * (1.0 + self.basis)
                + if taker_buys {
                    half_spread
                } else {
                    -half_spread
                };
            let tick = 10f64.powi(-(coin.price_places as i32));
            let price = (raw / tick).round() * tick;
            let unit = 10f64.powi(-(coin.size_places as i32));
            let size = ((coin.typical_size * (0.8 * rng.normal()).exp()) / unit)
                .round()
                .max(1.0)
                * unit;
            self.next_id += 1;
            self.trades.push(Trade {
                at: OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(step_start + offset) * 1_000_000,
                )
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                coin: index,
                id: self.next_id,
                price,
                size,
                taker_buys,
            });
        }
    }
}

/// The mid price of every coin at every step.
fn simulate(config: &SynthConfig, rng: &mut Rng) -> (Vec<Vec<f64>>, Exchange, Exchange) {
    let steps = i64::from(config.minutes) * 60_000 / STEP_MS;
    let start = millis(config.start);
    let dt = STEP_MS as f64 / 1000.0 / SECONDS_PER_YEAR;
    let jump_probability = 3.0 / 3600.0 * STEP_MS as f64 / 1000.0;
    let mut binance = Exchange {
        next_id: 1_000_000_000 + rng.next_u64() % 1_000_000,
        basis: 0.0,
        trades: Vec::new(),
    };
    let mut coinbase = Exchange {
        next_id: 700_000_000 + rng.next_u64() % 1_000_000,
        basis: -0.0002,
        trades: Vec::new(),
    };
    let mut mids: Vec<Vec<f64>> = config.coins.iter().map(|c| vec![c.price]).collect();
    for step in 0..steps {
        let step_start = start + step * STEP_MS;
        for (index, coin) in config.coins.iter().enumerate() {
            let last = *mids[index].last().unwrap_or(&coin.price);
            let sigma = coin.annual_volatility * dt.sqrt();
            let mut log_move = sigma * rng.normal() - 0.5 * sigma * sigma;
            if rng.unit() < jump_probability {
                log_move += 0.005 * rng.normal();
            }
            let mid = last * log_move.exp();
            mids[index].push(mid);
            binance.trade(rng, coin, index, mid, step_start);
            coinbase.trade(rng, coin, index, mid, step_start);
        }
    }
    (mids, binance, coinbase)
}

/// Makes the three recordings.
pub fn generate(config: &SynthConfig) -> std::io::Result<Recordings> {
    let mut rng = Rng(config.seed);
    let (mids, binance, coinbase) = simulate(config, &mut rng);
    let model = |feed: &str| {
        format!(
            "synthetic, not recorded: {feed} messages in the real format from coinfold's \
             price model (jump diffusion, 100 ms steps, volatility about 3x real, Poisson \
             trades; see projections/src/ingest/synth.rs and docs/replay.md), seed {}, \
             {} minutes, coins {}",
            config.seed,
            config.minutes,
            config
                .coins
                .iter()
                .map(|c| c.symbol)
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let days: Vec<Day> = config
        .coins
        .iter()
        .map(|coin| {
            let change = 0.03 * rng.normal();
            let open = coin.price / (1.0 + change);
            Day {
                open,
                high: open.max(coin.price) * (1.0 + 0.01 * rng.unit()),
                low: open.min(coin.price) * (1.0 - 0.01 * rng.unit()),
                volume: coin.volume_24h,
                quote_volume: coin.volume_24h * (open + coin.price) / 2.0,
            }
        })
        .collect();
    Ok(Recordings {
        binance: binance_file(config, &binance, &days, &model("Binance combined-stream"))?,
        coinbase: coinbase_file(config, &coinbase, &days, &model("Coinbase Advanced Trade"))?,
        coingecko: coingecko_file(config, &mids, &days, &model("CoinGecko REST"), &mut rng)?,
        news: news_file(
            config,
            "synthetic, not recorded: two RSS 2.0 feeds of invented headlines (one item \
             every 30 s, alternating feeds, each answer the latest 10), answered every \
             minute; see projections/src/ingest/synth.rs",
        )?,
    })
}

/// Frames in arrival order: each sent at its exchange time, arriving 35 ms later, never
/// before the frame sent before it (one socket keeps order).
struct Outbox {
    frames: Vec<(i64, u32, String)>,
}

impl Outbox {
    fn push(&mut self, sent_ms: i64, text: String) {
        let order = self.frames.len() as u32;
        self.frames.push((sent_ms, order, text));
    }

    fn write(mut self, writer: &mut ReplayWriter<Vec<u8>>) -> std::io::Result<()> {
        self.frames.sort_by_key(|(at, order, _)| (*at, *order));
        let mut last = i64::MIN;
        for (sent, _, text) in self.frames {
            let arrived = (sent + 35).max(last);
            last = arrived;
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(arrived) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            writer.frame(at, &text)?;
        }
        Ok(())
    }
}

fn binance_file(
    config: &SynthConfig,
    exchange: &Exchange,
    days: &[Day],
    model: &str,
) -> std::io::Result<Vec<u8>> {
    let pairs: Vec<String> = config
        .coins
        .iter()
        .map(|c| format!("{}usdt", c.symbol.to_ascii_lowercase()))
        .collect();
    let streams: Vec<String> = pairs
        .iter()
        .flat_map(|p| {
            [
                format!("{p}@aggTrade"),
                format!("{p}@kline_1m"),
                format!("{p}@miniTicker"),
            ]
        })
        .collect();
    let header = Header {
        replay: REPLAY_FORMAT,
        feed: Feed::Binance,
        url: format!(
            "wss://stream.binance.com:9443/stream?streams={}",
            streams.join("/")
        ),
        recorded_at: config.start,
        generated: Some(model.to_owned()),
    };
    let mut writer = ReplayWriter::new(Vec::new(), &header)?;
    let mut outbox = Outbox { frames: Vec::new() };
    let start = millis(config.start);
    let end = start + i64::from(config.minutes) * 60_000;
    let symbol = |i: usize| format!("{}USDT", config.coins[i].symbol);
    let mut trades_by_coin: Vec<Vec<&Trade>> = vec![Vec::new(); config.coins.len()];
    for trade in &exchange.trades {
        trades_by_coin[trade.coin].push(trade);
        let t = millis(trade.at);
        outbox.push(
            t,
            wrap_fn(
                format!("{}@aggTrade", pairs[trade.coin]),
                json!({
                    "e": "aggTrade", "E": t + 2, "s": symbol(trade.coin), "a": trade.id,
                    "p": fixed(trade.price, 8), "q": fixed(trade.size, 8),
                    "f": trade.id * 3, "l": trade.id * 3 + 1, "T": t,
                    "m": !trade.taker_buys, "M": true,
                }),
            ),
        );
    }
    for (index, trades) in trades_by_coin.iter().enumerate() {
        let places = 8;
        let mut candle: Option<Candle> = None;
        let mut day = days[index];
        let mut next = 0;
        let mut last_price = config.coins[index].price;
        // Every second: the ticker; every 2 s and at each minute's end: the candle.
        let mut now = start + 1_000;
        while now <= end {
            while next < trades.len() && millis(trades[next].at) < now {
                let trade = trades[next];
                let t = millis(trade.at);
                let open_time = t - t.rem_euclid(60_000);
                if candle.as_ref().is_some_and(|c| c.open_time != open_time)
                    && let Some(done) = candle.take()
                {
                    outbox.push(
                        done.open_time + 60_000,
                        kline(&pairs[index], &symbol(index), &done, true, places),
                    );
                }
                let c = candle.get_or_insert(Candle {
                    open_time,
                    first_id: trade.id,
                    last_id: trade.id,
                    open: trade.price,
                    high: trade.price,
                    low: trade.price,
                    close: trade.price,
                    volume: 0.0,
                    quote_volume: 0.0,
                    taker_buy_volume: 0.0,
                    taker_buy_quote: 0.0,
                    trades: 0,
                });
                c.last_id = trade.id;
                c.high = c.high.max(trade.price);
                c.low = c.low.min(trade.price);
                c.close = trade.price;
                c.volume += trade.size;
                c.quote_volume += trade.size * trade.price;
                if trade.taker_buys {
                    c.taker_buy_volume += trade.size;
                    c.taker_buy_quote += trade.size * trade.price;
                }
                c.trades += 1;
                day.high = day.high.max(trade.price);
                day.low = day.low.min(trade.price);
                day.volume += trade.size;
                day.quote_volume += trade.size * trade.price;
                last_price = trade.price;
                next += 1;
            }
            outbox.push(
                now,
                wrap_fn(
                    format!("{}@miniTicker", pairs[index]),
                    json!({
                        "e": "24hrMiniTicker", "E": now, "s": symbol(index),
                        "c": fixed(last_price, places), "o": fixed(day.open, places),
                        "h": fixed(day.high, places), "l": fixed(day.low, places),
                        "v": fixed(day.volume, places), "q": fixed(day.quote_volume, places),
                    }),
                ),
            );
            if let Some(c) = &candle
                && (now - start) % 2_000 == 0
                && now < c.open_time + 60_000
            {
                outbox.push(now, kline(&pairs[index], &symbol(index), c, false, places));
            }
            now += 1_000;
        }
        if let Some(done) = candle.take()
            && done.open_time + 60_000 <= end
        {
            outbox.push(
                done.open_time + 60_000,
                kline(&pairs[index], &symbol(index), &done, true, places),
            );
        }
    }
    outbox.write(&mut writer)?;
    writer.finish()
}

fn wrap_fn(stream: String, data: serde_json::Value) -> String {
    json!({ "stream": stream, "data": data }).to_string()
}

fn kline(pair: &str, symbol: &str, c: &Candle, closed: bool, places: usize) -> String {
    let event_time = if closed {
        c.open_time + 60_000
    } else {
        c.open_time
    };
    wrap_fn(
        format!("{pair}@kline_1m"),
        json!({
            "e": "kline", "E": event_time, "s": symbol,
            "k": {
                "t": c.open_time, "T": c.open_time + 59_999, "s": symbol, "i": "1m",
                "f": c.first_id, "L": c.last_id,
                "o": fixed(c.open, places), "c": fixed(c.close, places),
                "h": fixed(c.high, places), "l": fixed(c.low, places),
                "v": fixed(c.volume, places), "n": c.trades, "x": closed,
                "q": fixed(c.quote_volume, places), "V": fixed(c.taker_buy_volume, places),
                "Q": fixed(c.taker_buy_quote, places), "B": "0",
            }
        }),
    )
}

fn coinbase_file(
    config: &SynthConfig,
    exchange: &Exchange,
    days: &[Day],
    model: &str,
) -> std::io::Result<Vec<u8>> {
    let products: Vec<String> = config
        .coins
        .iter()
        .map(|c| format!("{}-USD", c.symbol))
        .collect();
    let header = Header {
        replay: REPLAY_FORMAT,
        feed: Feed::Coinbase,
        url: "wss://advanced-trade-ws.coinbase.com".to_owned(),
        recorded_at: config.start,
        generated: Some(model.to_owned()),
    };
    let mut writer = ReplayWriter::new(Vec::new(), &header)?;
    let channels = ["market_trades", "ticker", "heartbeats"];
    for channel in channels {
        writer.send(
            &json!({"type": "subscribe", "product_ids": products, "channel": channel}).to_string(),
        )?;
    }
    // Messages in the order the socket sends them; the sequence number is their index.
    let mut messages: Vec<(i64, u32, String, serde_json::Value)> = Vec::new();
    let start = millis(config.start);
    let end = start + i64::from(config.minutes) * 60_000;
    let mut push = |at: i64, channel: &str, events: serde_json::Value| {
        let order = messages.len() as u32;
        messages.push((at, order, channel.to_owned(), events));
    };
    let mut subscribed: BTreeMap<&str, &Vec<String>> = BTreeMap::new();
    for channel in channels {
        subscribed.insert(channel, &products);
        push(
            start - 500,
            "subscriptions",
            json!([{ "subscriptions": subscribed }]),
        );
    }
    let ticker = |index: usize, price: f64, day: &Day| {
        let coin = &config.coins[index];
        let places = coin.price_places;
        let tick = 10f64.powi(-(places as i32));
        json!({
            "type": "ticker", "product_id": products[index],
            "price": fixed(price, places),
            "volume_24_h": fixed(day.volume, 8),
            "low_24_h": fixed(day.low, places), "high_24_h": fixed(day.high, places),
            "low_52_w": fixed(coin.price * 0.4, places), "high_52_w": fixed(coin.price * 1.1, places),
            "price_percent_chg_24_h": fixed((price / day.open - 1.0) * 100.0, 8),
            "best_bid": fixed(price - tick, places), "best_bid_quantity": fixed(coin.typical_size, coin.size_places),
            "best_ask": fixed(price + tick, places), "best_ask_quantity": fixed(coin.typical_size * 0.8, coin.size_places),
        })
    };
    let mut day_state: Vec<Day> = days.to_vec();
    let mut last_price: Vec<f64> = config.coins.iter().map(|c| c.price).collect();
    push(
        start - 400,
        "ticker",
        json!([{ "type": "snapshot", "tickers": (0..config.coins.len())
            .map(|i| ticker(i, last_price[i], &day_state[i])).collect::<Vec<_>>() }]),
    );
    let mut last_ticker_second: Vec<i64> = vec![i64::MIN; config.coins.len()];
    let mut trades = exchange.trades.iter().peekable();
    let mut step = start;
    let mut counter = 0u64;
    while step < end {
        let step_end = step + STEP_MS;
        let mut batch = Vec::new();
        let mut touched = Vec::new();
        while let Some(trade) = trades.next_if(|t| millis(t.at) < step_end) {
            let coin = &config.coins[trade.coin];
            batch.push(json!({
                "trade_id": trade.id.to_string(), "product_id": products[trade.coin],
                "price": fixed(trade.price, coin.price_places),
                "size": fixed(trade.size, coin.size_places),
                "side": if trade.taker_buys { "BUY" } else { "SELL" },
                "time": rfc3339(trade.at),
            }));
            let day = &mut day_state[trade.coin];
            day.high = day.high.max(trade.price);
            day.low = day.low.min(trade.price);
            day.volume += trade.size;
            last_price[trade.coin] = trade.price;
            if !touched.contains(&trade.coin) {
                touched.push(trade.coin);
            }
        }
        if !batch.is_empty() {
            push(
                step_end,
                "market_trades",
                json!([{ "type": "update", "trades": batch }]),
            );
        }
        for index in touched {
            let second = step_end / 1_000;
            if last_ticker_second[index] != second {
                last_ticker_second[index] = second;
                push(
                    step_end,
                    "ticker",
                    json!([{ "type": "update", "tickers": [ticker(index, last_price[index], &day_state[index])] }]),
                );
            }
        }
        if step_end % 1_000 == 0 {
            counter += 1;
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(step_end) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let mut current = String::new();
            let _ = write!(
                current,
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:09}+00:00",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second(),
                at.nanosecond()
            );
            push(
                step_end,
                "heartbeats",
                json!([{ "current_time": current, "heartbeat_counter": counter }]),
            );
        }
        step = step_end;
    }
    messages.sort_by_key(|(at, order, _, _)| (*at, *order));
    let mut last = i64::MIN;
    for (sequence, (sent, _, channel, events)) in messages.into_iter().enumerate() {
        let arrived = (sent + 40).max(last);
        last = arrived;
        let sent_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(sent) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let text = json!({
            "channel": channel, "client_id": "", "timestamp": rfc3339(sent_at),
            "sequence_num": sequence, "events": events,
        })
        .to_string();
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(arrived) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        writer.frame(at, &text)?;
    }
    writer.finish()
}

/// The `/simple/price` query the poller sends for these coins.
pub fn simple_price_query(ids: &[&str], currencies: &[&str]) -> String {
    format!(
        "/api/v3/simple/price?ids={}&vs_currencies={}&include_market_cap=true\
         &include_24hr_vol=true&include_24hr_change=true&include_last_updated_at=true",
        ids.join(","),
        currencies.join(",")
    )
}

/// The `/coins/markets` query for one page.
pub fn markets_query(currency: &str, per_page: u32, page: u32) -> String {
    format!("/api/v3/coins/markets?vs_currency={currency}&per_page={per_page}&page={page}")
}

fn coingecko_file(
    config: &SynthConfig,
    mids: &[Vec<f64>],
    days: &[Day],
    model: &str,
    rng: &mut Rng,
) -> std::io::Result<Vec<u8>> {
    let header = Header {
        replay: REPLAY_FORMAT,
        feed: Feed::Http,
        url: "https://api.coingecko.com".to_owned(),
        recorded_at: config.start,
        generated: Some(model.to_owned()),
    };
    let mut writer = ReplayWriter::new(Vec::new(), &header)?;
    let ids: Vec<&str> = config.coins.iter().map(|c| c.gecko_id).collect();
    let price_path = simple_price_query(&ids, &["usd", "eur"]);
    let markets_path = markets_query("usd", 250, 1);
    let total_ms = i64::from(config.minutes) * 60_000;
    let mut eur_rate = 0.92;
    let mut at_ms = 0;
    while at_ms <= total_ms {
        let step = (at_ms / STEP_MS) as usize;
        let at = config.start + Duration::milliseconds(at_ms);
        let updated = at.unix_timestamp() - (at.unix_timestamp() % 30);
        eur_rate *= 1.0 + 0.0002 * rng.normal();
        if at_ms % 120_000 == 0 {
            let coins: Vec<serde_json::Value> = config
                .coins
                .iter()
                .enumerate()
                .map(|(i, coin)| {
                    let price = mids[i][step.min(mids[i].len() - 1)];
                    let day = &days[i];
                    json!({
                        "id": coin.gecko_id, "symbol": coin.symbol.to_ascii_lowercase(),
                        "name": coin.name,
                        "image": format!("https://coin-images.coingecko.com/coins/images/{}/large/{}.png", coin.rank, coin.gecko_id),
                        "current_price": round(price, coin.price_places),
                        "market_cap": (price * coin.circulating_supply).round(),
                        "market_cap_rank": coin.rank,
                        "fully_diluted_valuation": coin.max_supply.map(|m| (m * price).round()),
                        "total_volume": (day.volume * price).round(),
                        "high_24h": round(day.high, coin.price_places),
                        "low_24h": round(day.low, coin.price_places),
                        "price_change_24h": round(price - day.open, coin.price_places + 2),
                        "price_change_percentage_24h": round((price / day.open - 1.0) * 100.0, 5),
                        "market_cap_change_24h": ((price - day.open) * coin.circulating_supply).round(),
                        "market_cap_change_percentage_24h": round((price / day.open - 1.0) * 100.0, 5),
                        "circulating_supply": coin.circulating_supply,
                        "total_supply": coin.max_supply.unwrap_or(coin.circulating_supply),
                        "max_supply": coin.max_supply,
                        "ath": round(coin.price * 1.1, coin.price_places),
                        "ath_change_percentage": round((price / (coin.price * 1.1) - 1.0) * 100.0, 5),
                        "ath_date": "2026-03-14T07:10:36.635Z",
                        "atl": round(coin.price * 0.01, coin.price_places + 2),
                        "atl_change_percentage": round((price / (coin.price * 0.01) - 1.0) * 100.0, 3),
                        "atl_date": "2015-10-20T00:00:00.000Z",
                        "roi": null,
                        "last_updated": rfc3339(at),
                    })
                })
                .collect();
            writer.response(&Response {
                at,
                get: markets_path.clone(),
                status: 200,
                headers: BTreeMap::new(),
                body: serde_json::Value::Array(coins).to_string(),
            })?;
        }
        let mut body = serde_json::Map::new();
        for (i, coin) in config.coins.iter().enumerate() {
            let price = mids[i][step.min(mids[i].len() - 1)];
            let day = &days[i];
            let change = (price / day.open - 1.0) * 100.0;
            body.insert(
                coin.gecko_id.to_owned(),
                json!({
                    "usd": round(price, coin.price_places),
                    "usd_market_cap": price * coin.circulating_supply,
                    "usd_24h_vol": day.volume * price,
                    "usd_24h_change": change,
                    "eur": round(price * eur_rate, coin.price_places),
                    "eur_market_cap": price * eur_rate * coin.circulating_supply,
                    "eur_24h_vol": day.volume * price * eur_rate,
                    "eur_24h_change": change,
                    "last_updated_at": updated,
                }),
            );
        }
        writer.response(&Response {
            at,
            get: price_path.clone(),
            status: 200,
            headers: BTreeMap::new(),
            body: serde_json::Value::Object(body).to_string(),
        })?;
        at_ms += 30_000;
    }
    writer.finish()
}

/// The demo's news: invented headlines (none of them from the evaluation set), one
/// every 30 s, alternating between two feeds.
const HEADLINES: &[&str] = &[
    "Bitcoin climbs as spot ETF inflows extend their streak to a fifth day",
    "Solana validators ship client update to cut missed slots",
    "Ethereum developers set a date for the next network upgrade",
    "Cardano treasury vote opens to ADA holders",
    "Dogecoin slips as meme-coin trading volume cools",
    "Exchange halts SOL withdrawals after wallet exploit",
    "Ether rallies past resistance as staking deposits rise",
    "Regulator fines crypto lender over misleading yield ads",
    "Bitcoin miners sell fewer coins ahead of the halving",
    "Cardano partnership brings ADA payments to an African fintech",
    "DOGE jumps after payments app adds Dogecoin support",
    "Crypto Fear and Greed Index steady at 55",
    "Solana DeFi protocol drained of $12M in bridge attack",
    "BTC options open interest hits a record ahead of expiry",
    "Ethereum layer-2 fees drop to new lows after upgrade",
    "SEC delays decision on spot Solana ETF",
    "Bitcoin treasury firm buys another 1,200 BTC",
    "Cardano founder outlines roadmap at developer summit",
    "Dogecoin outflows from exchanges point to accumulation",
    "ETH liquidations top $200M as price tumbles overnight",
    "Solana mainnet upgrade goes live without incident",
    "Bitcoin hashrate reaches an all-time high",
    "Crypto exchange lists ADA perpetual futures",
    "Stablecoin issuer publishes monthly reserve report",
];

fn rss(feed: &str, items: &[(usize, OffsetDateTime)]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>{feed}</title>\
         <link>https://news.example/{feed}</link><description>coinfold demo feed</description>"
    );
    for (index, at) in items.iter().rev() {
        let date = at
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let slug: String = HEADLINES[*index]
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let _ = write!(
            xml,
            "<item><title><![CDATA[{title}]]></title>\
             <link>https://news.example/{feed}/{slug}?utm_source=rss</link>\
             <guid isPermaLink=\"false\">{feed}-{index}</guid>\
             <description><![CDATA[<p>{title}.</p>]]></description>\
             <pubDate>{date}</pubDate><dc:creator>Demo Desk</dc:creator>\
             <category>Markets</category></item>",
            title = HEADLINES[*index],
        );
    }
    xml.push_str("</channel></rss>");
    xml
}

fn news_file(config: &SynthConfig, model: &str) -> std::io::Result<Vec<u8>> {
    let header = Header {
        replay: REPLAY_FORMAT,
        feed: Feed::Http,
        url: "https://news.example".to_owned(),
        recorded_at: config.start,
        generated: Some(model.to_owned()),
    };
    let mut writer = ReplayWriter::new(Vec::new(), &header)?;
    let feeds = ["coindesk", "cointelegraph"];
    let published: Vec<(usize, OffsetDateTime)> = (0..HEADLINES.len())
        .map(|i| (i, config.start + Duration::seconds(30 * i as i64 - 20)))
        .collect();
    let total = i64::from(config.minutes) * 60;
    let mut second = 0;
    while second <= total {
        let at = config.start + Duration::seconds(second);
        for (n, feed) in feeds.iter().enumerate() {
            let items: Vec<(usize, OffsetDateTime)> = published
                .iter()
                .filter(|(i, when)| i % 2 == n && *when <= at)
                .copied()
                .collect();
            let latest = &items[items.len().saturating_sub(10)..];
            writer.response(&Response {
                at,
                get: format!("/{feed}/rss.xml"),
                status: 200,
                headers: [("content-type".to_owned(), "application/rss+xml".to_owned())].into(),
                body: rss(feed, latest),
            })?;
        }
        second += 60;
    }
    writer.finish()
}

fn round(value: f64, places: usize) -> f64 {
    let scale = 10f64.powi(places as i32);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::replay::ReplayFile;
    use crate::ingest::{binance, coinbase, coingecko};
    use time::macros::datetime;

    fn small() -> SynthConfig {
        SynthConfig {
            start: datetime!(2026-04-07 14:30 UTC),
            minutes: 3,
            seed: 7,
            coins: demo_coins(),
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_files() {
        let a = generate(&small()).unwrap();
        let b = generate(&small()).unwrap();
        assert_eq!(a.binance, b.binance);
        assert_eq!(a.coinbase, b.coinbase);
        assert_eq!(a.coingecko, b.coingecko);
        assert_eq!(a.news, b.news);
    }

    #[test]
    fn the_shipped_recordings_are_what_the_model_makes() {
        let made = generate(&SynthConfig::shipped()).unwrap();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../recordings/");
        for (name, bytes) in [
            ("binance.jsonl", &made.binance),
            ("coinbase.jsonl", &made.coinbase),
            ("coingecko.jsonl", &made.coingecko),
            ("news.jsonl", &made.news),
        ] {
            let shipped = std::fs::read(format!("{dir}{name}")).unwrap();
            assert!(
                shipped == *bytes,
                "recordings/{name} differs from the model: run `coinfold replay generate`"
            );
            let file = ReplayFile::read(shipped.as_slice()).unwrap();
            let (first, last) = file.span().unwrap();
            assert!(
                last - first >= time::Duration::minutes(10),
                "{name} spans {}",
                last - first
            );
            if name != "news.jsonl" {
                let coins: std::collections::BTreeSet<String> =
                    file.ticks().iter().map(|t| t.coin.to_string()).collect();
                assert_eq!(coins.len(), 5, "{name}: {coins:?}");
            }
        }
    }

    #[test]
    fn the_news_feeds_read_and_grow() {
        let files = generate(&small()).unwrap();
        let news = ReplayFile::read(files.news.as_slice()).unwrap();
        let tagger = crate::ingest::news::CoinTagger::default_coins();
        let mut seen = std::collections::BTreeSet::new();
        for response in &news.responses {
            let (articles, problems) = crate::ingest::news::parse_feed(
                response.body.as_bytes(),
                "x",
                response.at,
                &tagger,
            )
            .unwrap();
            assert!(problems.is_empty());
            seen.extend(articles.into_iter().map(|a| a.id));
        }
        // 3 minutes: items published up to 180 s, one every 30 s from -20 s.
        assert_eq!(seen.len(), 7);
    }

    #[test]
    fn every_generated_message_reads_with_the_real_parsers() {
        let files = generate(&small()).unwrap();
        let binance_file = ReplayFile::read(files.binance.as_slice()).unwrap();
        let mut trades = 0;
        for frame in &binance_file.frames {
            match binance::parse(frame.text.as_bytes(), frame.at).unwrap() {
                binance::BinanceMessage::Ticks(ticks) => trades += ticks.len(),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(trades > 1_000, "{trades} binance ticks in 3 minutes");
        let coinbase_file = ReplayFile::read(files.coinbase.as_slice()).unwrap();
        let mut tracker = coinbase::SequenceTracker::default();
        for frame in &coinbase_file.frames {
            let message = coinbase::parse(frame.text.as_bytes(), frame.at).unwrap();
            assert_eq!(tracker.observe(message.sequence_num.unwrap()), None);
        }
        let gecko = ReplayFile::read(files.coingecko.as_slice()).unwrap();
        let ids = demo_coins()
            .iter()
            .map(|c| {
                (
                    coinfold_domain::values::CoinId::parse(c.gecko_id).unwrap(),
                    coinfold_domain::values::CoinSymbol::parse(c.symbol).unwrap(),
                )
            })
            .collect();
        let currencies = [
            coinfold_domain::values::QuoteCurrency::parse("USD").unwrap(),
            coinfold_domain::values::QuoteCurrency::parse("EUR").unwrap(),
        ];
        for response in &gecko.responses {
            if response.path() == "/api/v3/simple/price" {
                let ticks = coingecko::parse_simple_price(
                    response.body.as_bytes(),
                    response.at,
                    &ids,
                    &currencies,
                )
                .unwrap();
                assert_eq!(ticks.len(), 10);
            } else {
                let (coins, problems) = coingecko::parse_markets(response.body.as_bytes()).unwrap();
                assert_eq!((coins.len(), problems), (5, vec![]));
            }
        }
    }
}
