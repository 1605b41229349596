//! One message of one pass, rewritten: [`Rewrite`] moves its times and ids on and
//! mirrors its prices (see [`super`] for how), per feed.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Number, Value};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::macros::format_description;

use super::{Ids, Looping, Pass, Series, decimal_of, is_currency, whole_of};

fn list_mut<'a>(value: &'a mut Value, field: &str) -> impl Iterator<Item = &'a mut Value> {
    value
        .get_mut(field)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// Coinbase heartbeats' `current_time`: `2026-04-07 14:30:10.000000000+00:00`.
pub(super) const HEARTBEAT_TIME: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:9]\
     [offset_hour sign:mandatory]:[offset_minute]"
);

/// One message of one pass being rewritten.
pub(super) struct Rewrite<'a> {
    pub(super) looping: &'a Looping,
    pub(super) pass: &'a Pass,
}

impl Rewrite<'_> {
    fn time(&self, recorded: OffsetDateTime) -> Option<OffsetDateTime> {
        self.looping.timeline.wall(self.pass, recorded)
    }

    /// Epoch milliseconds (Binance).
    fn millis(&self, field: Option<&mut Value>) {
        let Some(field) = field else { return };
        let moved = field
            .as_i64()
            .and_then(|ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            })
            .and_then(|at| self.time(at));
        if let Some(at) = moved {
            *field = Value::from((at.unix_timestamp_nanos() / 1_000_000) as i64);
        }
    }

    /// Epoch seconds (CoinGecko's `last_updated_at`).
    fn seconds(&self, field: Option<&mut Value>) {
        let Some(field) = field else { return };
        let moved = field
            .as_i64()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .and_then(|at| self.time(at));
        if let Some(at) = moved {
            *field = Value::from(at.unix_timestamp());
        }
    }

    /// A time as text, written back in the format it came in: RFC 3339, or Coinbase's
    /// heartbeat format.
    fn text_time(&self, field: Option<&mut Value>) {
        let Some(Value::String(text)) = field else {
            return;
        };
        // The heartbeat format first: RFC 3339 parsing takes its space for a `T`.
        let moved = if let Ok(at) = OffsetDateTime::parse(text, HEARTBEAT_TIME) {
            self.time(at).and_then(|t| t.format(HEARTBEAT_TIME).ok())
        } else if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
            self.time(at).and_then(|t| t.format(&Rfc3339).ok())
        } else {
            None
        };
        if let Some(moved) = moved {
            *text = moved;
        }
    }

    /// An RFC 822 date (RSS), to the second as RSS writes it.
    fn rfc2822(&self, text: &str) -> Option<String> {
        let at = OffsetDateTime::parse(text.trim(), &Rfc2822).ok()?;
        let moved = self.time(at)?.replace_nanosecond(0).ok()?;
        moved.format(&Rfc2822).ok()
    }

    /// This pass's number among the passes of every playback of the file, however
    /// often it was started: the second on the wall clock at which the pass began (or,
    /// for passes shorter than a second, the first pass's second plus the pass number).
    /// A playback started again later (a restarted `coinfold ingest`) numbers its
    /// passes past the earlier one's, so its trades and articles are not taken for
    /// those already seen.
    fn serial(&self) -> u64 {
        let started =
            u64::try_from(self.pass.started.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let pass =
            (self.looping.timeline.period.as_seconds_f64() * 1_000.0 / self.pass.speed) as u64;
        if pass >= 1_000 {
            started.saturating_add(self.pass.number.saturating_mul(pass)) / 1_000
        } else {
            (started / 1_000).saturating_add(self.pass.number)
        }
    }

    /// Moves an id on: a message counter by `k` ranges in pass `k`, a trade id by
    /// [`Self::serial`] ranges.
    fn bump(&self, family: Ids, field: Option<&mut Value>) {
        let (Some(field), Some((min, max))) = (field, self.looping.ids.get(&family)) else {
            return;
        };
        let Some(id) = whole_of(field) else { return };
        let passes = if family.counts_messages() {
            self.pass.number
        } else {
            self.serial()
        };
        let moved = (max - min + 1)
            .checked_mul(passes)
            .and_then(|offset| id.checked_add(offset));
        match (moved, &*field) {
            (Some(moved), Value::String(_)) => *field = Value::from(moved.to_string()),
            (Some(moved), _) => *field = Value::from(moved),
            (None, _) => {}
        }
    }

    fn series(&self, key: &str) -> Option<&Series> {
        self.looping
            .series
            .get(key)
            .filter(|_| self.pass.mirrored())
    }

    /// The mirrored price of a field, written like the field: a string as wide as the
    /// recorded one, or a number.
    fn mirror_of(series: &Series, field: &Value) -> Option<(Value, Decimal)> {
        let price = decimal_of(field)?;
        let mut mirrored = series.mirror(price)?;
        let value = match field {
            Value::String(_) => {
                mirrored.rescale(price.scale().max(series.places));
                Value::from(mirrored.to_string())
            }
            _ => Value::Number(Number::from_f64(mirrored.to_f64()?)?),
        };
        Some((value, mirrored.checked_div(price)?))
    }

    /// Mirrors one price in place; returns the factor it moved by.
    fn mirror(&self, key: &str, field: Option<&mut Value>) -> Option<Decimal> {
        let series = self.series(key)?;
        let field = field?;
        let (value, factor) = Self::mirror_of(series, field)?;
        *field = value;
        Some(factor)
    }

    /// Sets `a` to the mirror of `b` and `b` to the mirror of `a`: a mirrored low is the
    /// new high, a mirrored ask the new bid.
    fn mirror_swapped(&self, key: &str, object: &mut Value, a: &str, b: &str) {
        let Some(series) = self.series(key) else {
            return;
        };
        let (Some(old_a), Some(old_b)) = (object.get(a), object.get(b)) else {
            return;
        };
        if let (Some((new_a, _)), Some((new_b, _))) = (
            Self::mirror_of(series, old_b),
            Self::mirror_of(series, old_a),
        ) {
            object[a] = new_a;
            object[b] = new_b;
        }
    }

    /// Multiplies an amount (a market cap) by `factor`, at its own decimals.
    fn scale(field: Option<&mut Value>, factor: Decimal) {
        let Some(field) = field else { return };
        let Some(amount) = decimal_of(field) else {
            return;
        };
        let scaled = amount
            .checked_mul(factor)
            .map(|a| a.round_dp(amount.normalize().scale()));
        if let Some(number) = scaled.and_then(|a| a.to_f64()).and_then(Number::from_f64) {
            *field = Value::Number(number);
        }
    }

    pub(super) fn binance(&self, data: &mut Value) {
        self.millis(data.get_mut("E"));
        self.millis(data.get_mut("T"));
        let symbol = data
            .get("s")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match data.get("e").and_then(Value::as_str) {
            Some("aggTrade" | "trade") => {
                self.bump(Ids::BinanceAggregate, data.get_mut("a"));
                for field in ["t", "f", "l"] {
                    self.bump(Ids::BinanceTrade, data.get_mut(field));
                }
                if self.mirror(&symbol, data.get_mut("p")).is_some()
                    && let Some(Value::Bool(buyer_is_maker)) = data.get_mut("m")
                {
                    *buyer_is_maker = !*buyer_is_maker;
                }
            }
            Some("kline") => {
                let Some(candle) = data.get_mut("k") else {
                    return;
                };
                self.millis(candle.get_mut("t"));
                self.millis(candle.get_mut("T"));
                self.bump(Ids::BinanceKline, candle.get_mut("f"));
                self.bump(Ids::BinanceKline, candle.get_mut("L"));
                self.mirror(&symbol, candle.get_mut("o"));
                self.mirror(&symbol, candle.get_mut("c"));
                self.mirror_swapped(&symbol, candle, "h", "l");
            }
            Some("24hrMiniTicker") => {
                self.mirror(&symbol, data.get_mut("o"));
                self.mirror(&symbol, data.get_mut("c"));
                self.mirror_swapped(&symbol, data, "h", "l");
            }
            _ => {}
        }
    }

    pub(super) fn coinbase(&self, message: &mut Value) {
        self.text_time(message.get_mut("timestamp"));
        self.bump(Ids::CoinbaseSequence, message.get_mut("sequence_num"));
        for event in list_mut(message, "events") {
            self.text_time(event.get_mut("current_time"));
            self.bump(Ids::CoinbaseHeartbeat, event.get_mut("heartbeat_counter"));
            for ticker in list_mut(event, "tickers") {
                let product = ticker
                    .get("product_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if self.mirror(&product, ticker.get_mut("price")).is_none() {
                    continue;
                }
                self.mirror_swapped(&product, ticker, "high_24_h", "low_24_h");
                // The book turns over: the new bid is the mirrored ask, with its size.
                self.mirror_swapped(&product, ticker, "best_bid", "best_ask");
                if let Some(object) = ticker.as_object_mut()
                    && let (Some(bid), Some(ask)) = (
                        object.remove("best_bid_quantity"),
                        object.remove("best_ask_quantity"),
                    )
                {
                    object.insert("best_bid_quantity".to_owned(), ask);
                    object.insert("best_ask_quantity".to_owned(), bid);
                }
            }
            for trade in list_mut(event, "trades") {
                self.text_time(trade.get_mut("time"));
                self.bump(Ids::CoinbaseTrade, trade.get_mut("trade_id"));
                let product = trade
                    .get("product_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if self.mirror(&product, trade.get_mut("price")).is_some()
                    && let Some(Value::String(side)) = trade.get_mut("side")
                {
                    let flipped = match side.as_str() {
                        "BUY" => "SELL",
                        "SELL" => "BUY",
                        other => other,
                    };
                    *side = flipped.to_owned();
                }
            }
        }
    }

    pub(super) fn simple_price(&self, value: &mut Value) {
        let Some(coins) = value.as_object_mut() else {
            return;
        };
        for (coin, prices) in coins.iter_mut() {
            self.seconds(prices.get_mut("last_updated_at"));
            let Some(prices) = prices.as_object_mut() else {
                continue;
            };
            let currencies: Vec<String> =
                prices.keys().filter(|k| is_currency(k)).cloned().collect();
            for currency in currencies {
                let key = format!("{coin}/{currency}");
                if let Some(factor) = self.mirror(&key, prices.get_mut(&currency)) {
                    Self::scale(prices.get_mut(&format!("{currency}_market_cap")), factor);
                }
            }
        }
    }

    pub(super) fn markets(&self, value: &mut Value, currency: &str) {
        for coin in value.as_array_mut().into_iter().flatten() {
            self.text_time(coin.get_mut("last_updated"));
            let Some(id) = coin.get("id").and_then(Value::as_str) else {
                continue;
            };
            let key = format!("{id}/{currency}");
            if let Some(factor) = self.mirror(&key, coin.get_mut("current_price")) {
                Self::scale(coin.get_mut("market_cap"), factor);
                Self::scale(coin.get_mut("fully_diluted_valuation"), factor);
                self.mirror_swapped(&key, coin, "high_24h", "low_24h");
            }
        }
    }

    pub(super) fn newsapi(&self, value: &mut Value) {
        for article in list_mut(value, "articles") {
            self.text_time(article.get_mut("publishedAt"));
            if let Some(Value::String(url)) = article.get_mut("url") {
                *url = self.link(url, "&");
            }
        }
    }

    /// A link of this pass: with `played=` its [`Self::serial`] in its query.
    fn link(&self, url: &str, ampersand: &str) -> String {
        let (base, fragment) = match url.split_once('#') {
            Some((base, fragment)) => (base, format!("#{fragment}")),
            None => (url, String::new()),
        };
        let separator = if base.contains('?') { ampersand } else { "?" };
        format!("{base}{separator}played={}{fragment}", self.serial())
    }

    /// A guid of this pass: a link-like one as [`Self::link`], another with
    /// `-played-` and the serial after it.
    fn guid(&self, guid: &str, ampersand: &str) -> String {
        let trimmed = guid.trim();
        if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            self.link(trimmed, ampersand)
        } else {
            format!("{trimmed}-played-{}", self.serial())
        }
    }

    pub(super) fn rss(&self, xml: &str) -> String {
        let items = rewrite_elements(xml, "item", &|item, _| {
            let item = rewrite_elements(item, "link", &|link, escaped| {
                Some(self.link(link.trim(), if escaped { "&amp;" } else { "&" }))
            });
            Some(rewrite_elements(&item, "guid", &|guid, escaped| {
                Some(self.guid(guid, if escaped { "&amp;" } else { "&" }))
            }))
        });
        let dated = rewrite_elements(&items, "pubDate", &|date, _| self.rfc2822(date));
        rewrite_elements(&dated, "lastBuildDate", &|date, _| self.rfc2822(date))
    }
}

/// Rewrites the text of every `<tag …>text</tag>` in `xml` with `change`, which is given
/// the text (the inside of a CDATA section, or the escaped text) and whether it is
/// escaped; `None` keeps the text.
pub(super) fn rewrite_elements(
    xml: &str,
    tag: &str,
    change: &dyn Fn(&str, bool) -> Option<String>,
) -> String {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut out = String::with_capacity(xml.len() + 64);
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let name_end = at + open.len();
        let after = &rest[name_end..];
        // `<link>` or `<link …>`, not `<linkage>`; not a self-closing `<link/>`.
        let Some(close_angle) = after.find('>') else {
            break;
        };
        let is_element =
            after.starts_with(['>', ' ', '\t', '\r', '\n']) && !after[..close_angle].ends_with('/');
        if !is_element {
            out.push_str(&rest[..name_end]);
            rest = after;
            continue;
        }
        let text_start = name_end + close_angle + 1;
        let Some(length) = rest[text_start..].find(&close) else {
            break;
        };
        let text = &rest[text_start..text_start + length];
        out.push_str(&rest[..text_start]);
        let cdata = text
            .trim()
            .strip_prefix("<![CDATA[")
            .and_then(|inner| inner.strip_suffix("]]>"));
        let changed = match cdata {
            Some(inner) => change(inner, false).map(|inner| format!("<![CDATA[{inner}]]>")),
            None => change(text, true),
        };
        out.push_str(changed.as_deref().unwrap_or(text));
        rest = &rest[text_start + length..];
    }
    out.push_str(rest);
    out
}
