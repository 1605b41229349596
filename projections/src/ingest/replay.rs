//! Recorded feeds: the replay file format (FEEDS.md), read and written.
//!
//! A replay file is JSON lines. The first line is a [`Header`]: which feed, the URL the
//! session connected to, when it was recorded and, for a file made by a model rather
//! than recorded, how it was made. Then, for a websocket feed, the messages the client
//! sent (`{"send": "…"}`: the subscribe messages) and every frame it received with the
//! time it arrived (`{"t": "…", "text": "…"}`); for an HTTP feed, every response with the
//! time it was fetched and the path asked for (`{"t": "…", "get": "/api/v3/…",
//! "status": 200, "headers": {…}, "body": "…"}`). Frames and bodies are kept as text,
//! byte for byte, so a recording can hold a malformed message too.
//!
//! [`super::replay_server`] plays a file back, once or in a loop whose passes
//! [`super::replay_pass`] moves to the time they are played; [`super::synth`] writes
//! the shipped ones.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use coinfold_domain::values::{CoinId, CoinSymbol, QuoteCurrency};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::Tick;

/// The format version, in every header.
pub const REPLAY_FORMAT: u32 = 1;

/// What kind of session a file holds, and so how it is played back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Feed {
    /// Binance combined streams: frames pushed from the moment the socket opens.
    Binance,
    /// Coinbase Advanced Trade: frames pushed once the client has subscribed.
    Coinbase,
    /// HTTP responses (CoinGecko, RSS and Atom feeds, NewsAPI), served per path.
    Http,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// [`REPLAY_FORMAT`].
    pub replay: u32,
    pub feed: Feed,
    /// The URL the recorded session connected to (websocket) or its base URL (HTTP).
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// For a file made from a model, not recorded: the model, its parameters and seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<String>,
}

/// One frame the server sent, with the time it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub at: OffsetDateTime,
    pub text: String,
}

/// One HTTP response, with the time it was fetched and the path (and query) asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub at: OffsetDateTime,
    pub get: String,
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Response {
    /// The path without its query: responses are matched to requests by path.
    pub fn path(&self) -> &str {
        self.get.split('?').next().unwrap_or_default()
    }
}

/// A whole replay file in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayFile {
    pub header: Header,
    /// What the client sent after connecting (websocket feeds).
    pub sends: Vec<String>,
    pub frames: Vec<Frame>,
    pub responses: Vec<Response>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
}

fn line_error(line: usize, reason: impl Into<String>) -> ReplayError {
    ReplayError::Line {
        line,
        reason: reason.into(),
    }
}

#[derive(Serialize, Deserialize)]
struct SendLine {
    send: String,
}

#[derive(Serialize, Deserialize)]
struct FrameLine {
    #[serde(with = "time::serde::rfc3339")]
    t: OffsetDateTime,
    text: String,
}

#[derive(Serialize, Deserialize)]
struct ResponseLine {
    #[serde(with = "time::serde::rfc3339")]
    t: OffsetDateTime,
    get: String,
    status: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    body: String,
}

impl ReplayFile {
    pub fn open(path: &Path) -> Result<Self, ReplayError> {
        let io = |source| ReplayError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        Self::read(std::io::BufReader::new(file)).map_err(|e| match e {
            ReplayError::Io { source, .. } => io(source),
            other => other,
        })
    }

    /// Reads a file, refusing any line that is not a replay entry, any entry of the
    /// wrong kind for the feed, and times that go backwards.
    pub fn read(reader: impl BufRead) -> Result<Self, ReplayError> {
        let mut lines = reader.lines().enumerate();
        let header = loop {
            let Some((index, line)) = lines.next() else {
                return Err(line_error(1, "the file is empty"));
            };
            let line = line.map_err(|source| ReplayError::Io {
                path: String::new(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let header: Header = serde_json::from_str(&line)
                .map_err(|e| line_error(index + 1, format!("not a replay header: {e}")))?;
            if header.replay != REPLAY_FORMAT {
                return Err(line_error(
                    index + 1,
                    format!(
                        "replay format {} (this build reads {REPLAY_FORMAT})",
                        header.replay
                    ),
                ));
            }
            break header;
        };
        let mut file = ReplayFile {
            header,
            sends: Vec::new(),
            frames: Vec::new(),
            responses: Vec::new(),
        };
        let mut last: Option<OffsetDateTime> = None;
        for (index, line) in lines {
            let number = index + 1;
            let line = line.map_err(|source| ReplayError::Io {
                path: String::new(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(&line)
                .map_err(|e| line_error(number, format!("not JSON: {e}")))?;
            let at = if value.get("send").is_some() {
                let send: SendLine = serde_json::from_value(value)
                    .map_err(|e| line_error(number, format!("send line: {e}")))?;
                if file.header.feed == Feed::Http {
                    return Err(line_error(number, "an HTTP feed has no send lines"));
                }
                file.sends.push(send.send);
                continue;
            } else if value.get("text").is_some() {
                let frame: FrameLine = serde_json::from_value(value)
                    .map_err(|e| line_error(number, format!("frame line: {e}")))?;
                if file.header.feed == Feed::Http {
                    return Err(line_error(number, "an HTTP feed has no frames"));
                }
                file.frames.push(Frame {
                    at: frame.t,
                    text: frame.text,
                });
                frame.t
            } else if value.get("get").is_some() {
                let response: ResponseLine = serde_json::from_value(value)
                    .map_err(|e| line_error(number, format!("response line: {e}")))?;
                if file.header.feed != Feed::Http {
                    return Err(line_error(number, "a websocket feed has no responses"));
                }
                if !response.get.starts_with('/') {
                    return Err(line_error(number, "get must be a path starting with /"));
                }
                file.responses.push(Response {
                    at: response.t,
                    get: response.get,
                    status: response.status,
                    headers: response
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v))
                        .collect(),
                    body: response.body,
                });
                response.t
            } else {
                return Err(line_error(
                    number,
                    "expected a send, frame (text) or response (get) line",
                ));
            };
            if last.is_some_and(|last| at < last) {
                return Err(line_error(number, "time goes backwards"));
            }
            last = Some(at);
        }
        Ok(file)
    }

    /// The time of the first and the last entry.
    pub fn span(&self) -> Option<(OffsetDateTime, OffsetDateTime)> {
        let times: Vec<OffsetDateTime> = self
            .frames
            .iter()
            .map(|f| f.at)
            .chain(self.responses.iter().map(|r| r.at))
            .collect();
        Some((*times.first()?, *times.last()?))
    }
}

/// What a CoinGecko recording asked for: ids with their symbols (from its
/// `/coins/markets` answers) and the currencies of its `/simple/price` requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeckoRequest {
    pub coins: BTreeMap<String, String>,
    pub currencies: Vec<String>,
}

impl ReplayFile {
    pub fn coingecko_request(&self) -> GeckoRequest {
        let mut request = GeckoRequest::default();
        for response in &self.responses {
            match response.path() {
                "/api/v3/coins/markets" => {
                    if let Ok((markets, _)) =
                        super::coingecko::parse_markets(response.body.as_bytes())
                    {
                        for coin in markets {
                            request
                                .coins
                                .insert(coin.id.to_string(), coin.symbol.to_string());
                        }
                    }
                }
                "/api/v3/simple/price" => {
                    request.currencies = query_list(&response.get, "vs_currencies");
                }
                _ => {}
            }
        }
        request
    }

    /// Every tick the recording holds, in order, read by the connectors' own parsers
    /// (frames or answers that do not read are passed over; a CoinGecko price counts
    /// once, when its `last_updated_at` is new, as the poller passes it on).
    pub fn ticks(&self) -> Vec<Tick> {
        use super::binance::{self, BinanceMessage};
        use super::coinbase::{self, CoinbaseBody};
        let mut ticks = Vec::new();
        match self.header.feed {
            Feed::Binance => {
                for frame in &self.frames {
                    if let Ok(BinanceMessage::Ticks(read)) =
                        binance::parse(frame.text.as_bytes(), frame.at)
                    {
                        ticks.extend(read);
                    }
                }
            }
            Feed::Coinbase => {
                for frame in &self.frames {
                    if let Ok(message) = coinbase::parse(frame.text.as_bytes(), frame.at)
                        && let CoinbaseBody::Ticks(read) = message.body
                    {
                        ticks.extend(read);
                    }
                }
            }
            Feed::Http => {
                let request = self.coingecko_request();
                let ids = request
                    .coins
                    .iter()
                    .filter_map(|(id, symbol)| {
                        Some((CoinId::parse(id).ok()?, CoinSymbol::parse(symbol).ok()?))
                    })
                    .collect();
                let currencies: Vec<QuoteCurrency> = request
                    .currencies
                    .iter()
                    .filter_map(|c| QuoteCurrency::parse(c.to_ascii_uppercase()).ok())
                    .collect();
                let mut newest: BTreeMap<(String, String), OffsetDateTime> = BTreeMap::new();
                for response in self
                    .responses
                    .iter()
                    .filter(|r| r.path() == "/api/v3/simple/price" && r.status == 200)
                {
                    let Ok(read) = super::coingecko::parse_simple_price(
                        response.body.as_bytes(),
                        response.at,
                        &ids,
                        &currencies,
                    ) else {
                        continue;
                    };
                    for tick in read {
                        let key = (tick.coin.to_string(), tick.quote.to_string());
                        if newest
                            .get(&key)
                            .is_none_or(|last| tick.exchange_time > *last)
                        {
                            newest.insert(key, tick.exchange_time);
                            ticks.push(tick);
                        }
                    }
                }
            }
        }
        ticks
    }
}

/// The comma-separated values of one query parameter of a path.
pub fn query_list(get: &str, name: &str) -> Vec<String> {
    get.split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| *key == name)
        .flat_map(|(_, value)| value.split(',').map(str::to_owned))
        .collect()
}

/// Writes a replay file line by line.
pub struct ReplayWriter<W: Write> {
    out: W,
}

impl<W: Write> ReplayWriter<W> {
    pub fn new(mut out: W, header: &Header) -> std::io::Result<Self> {
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        Ok(Self { out })
    }

    fn line(&mut self, value: &impl Serialize) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")
    }

    pub fn send(&mut self, text: &str) -> std::io::Result<()> {
        self.line(&SendLine {
            send: text.to_owned(),
        })
    }

    pub fn frame(&mut self, at: OffsetDateTime, text: &str) -> std::io::Result<()> {
        self.line(&FrameLine {
            t: at,
            text: text.to_owned(),
        })
    }

    pub fn response(&mut self, response: &Response) -> std::io::Result<()> {
        self.line(&ResponseLine {
            t: response.at,
            get: response.get.clone(),
            status: response.status,
            headers: response.headers.clone(),
            body: response.body.clone(),
        })
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn header(feed: Feed) -> Header {
        Header {
            replay: REPLAY_FORMAT,
            feed,
            url: "wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade".into(),
            recorded_at: datetime!(2026-04-07 14:30 UTC),
            generated: None,
        }
    }

    #[test]
    fn a_written_file_reads_back_the_same() {
        let mut writer = ReplayWriter::new(Vec::new(), &header(Feed::Coinbase)).unwrap();
        writer.send(r#"{"type":"subscribe"}"#).unwrap();
        writer
            .frame(datetime!(2026-04-07 14:30:01 UTC), "{\"channel\":\"x\"}")
            .unwrap();
        writer
            .frame(datetime!(2026-04-07 14:30:02 UTC), "not json, kept as is")
            .unwrap();
        let bytes = writer.finish().unwrap();
        let file = ReplayFile::read(bytes.as_slice()).unwrap();
        assert_eq!(file.header, header(Feed::Coinbase));
        assert_eq!(file.sends, vec![r#"{"type":"subscribe"}"#.to_owned()]);
        assert_eq!(file.frames.len(), 2);
        assert_eq!(file.frames[1].text, "not json, kept as is");
        assert_eq!(
            file.span(),
            Some((
                datetime!(2026-04-07 14:30:01 UTC),
                datetime!(2026-04-07 14:30:02 UTC)
            ))
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_line_number() {
        let head = serde_json::to_string(&header(Feed::Binance)).unwrap();
        let cases = [
            ("", "line 1: the file is empty"),
            ("{\"replay\":9}", "line 1: not a replay header"),
            (
                &format!(
                    "{head}\n{{\"t\":\"2026-04-07T14:30:01Z\",\"text\":\"a\"}}\n{{\"t\":\"2026-04-07T14:30:00Z\",\"text\":\"b\"}}"
                ),
                "line 3: time goes backwards",
            ),
            (
                &format!(
                    "{head}\n{{\"t\":\"2026-04-07T14:30:01Z\",\"get\":\"/x\",\"status\":200,\"body\":\"\"}}"
                ),
                "line 2: a websocket feed has no responses",
            ),
            (&format!("{head}\n[1,2]"), "line 2: expected a send"),
            (
                &format!("{head}\n{{\"t\":5,\"text\":\"a\"}}"),
                "line 2: frame line",
            ),
        ];
        for (input, expected) in cases {
            let error = ReplayFile::read(input.as_bytes()).unwrap_err().to_string();
            assert!(
                error.starts_with(expected),
                "{input:?}: {error:?} should start with {expected:?}"
            );
        }
    }
}
