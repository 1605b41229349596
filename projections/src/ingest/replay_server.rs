//! A local server that plays a [`ReplayFile`] back, as the real endpoint would.
//!
//! - **Binance**: a websocket that pushes the recorded frames as soon as it opens,
//!   paced by their recorded times divided by the speed; it pings on an interval and
//!   drops a client that has not ponged in time (as Binance does, with 20 s and 60 s);
//!   after a recorded `serverShutdown` frame it closes the socket.
//! - **Coinbase**: a websocket that waits until the client has subscribed to every
//!   channel the recording subscribed to, then pushes the frames.
//! - **HTTP**: each `GET` is answered with the next recorded response for its path once
//!   that response is due on the playback clock; before then, the one answered last
//!   again (what an upstream cache does). A recorded 429 is answered as a 429.
//!
//! [`Passes`] says how often the recording plays: once as recorded (what the tests
//! compare with the file), once with its times moved to now, or forever, each pass
//! going on from the one before (the default of `coinfold ingest --replay`; how each
//! message is rewritten is in [`super::replay_pass`]). The playback clock keeps
//! running from one pass into the next: a websocket sends the first frame of a pass
//! one pass period after the first frame of the pass before, and an HTTP response of
//! pass `k` is due `k` periods after its recorded offset.
//!
//! The position in the recording lives in the [`Playback`], not in the server: stop a
//! server mid-stream and start another on the same port with the same playback, and it
//! goes on where the first stopped (the same pass, the same frame, on the same clock:
//! frames that fell due meanwhile follow at once, unless the client was away longer
//! than [`CATCH_UP`], when the clock waits for it instead), which is how the tests kill
//! the "exchange" and see the connector reconnect and receive the rest. One client at
//! a time is the intended use: two clients share the one position.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::replay::{Feed, Frame, ReplayFile, Response as Recorded};
use super::replay_pass::{Looping, Pass, Timeline};

/// How a websocket playback keeps the connection alive.
#[derive(Debug, Clone, Copy)]
pub struct PingPolicy {
    pub every: Duration,
    /// A client that has not answered a ping within this time is dropped.
    pub pong_timeout: Duration,
}

impl Default for PingPolicy {
    /// Binance's: a ping every 20 s, a minute to answer.
    fn default() -> Self {
        Self {
            every: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(60),
        }
    }
}

/// How many times a playback goes through its recording, and whether it rewrites it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passes {
    /// Once, every message byte for byte as recorded: what a test compares with the
    /// file's own ticks.
    Verbatim,
    /// Once, with its times moved to the moment each message is sent (`--once`).
    Once,
    /// Pass after pass until stopped, each going on from the one before: later times,
    /// greater ids, the price path continued ([`super::replay_pass`]).
    Forever,
}

/// A websocket client that comes back with frames overdue by more than this gets them
/// from now on, as they fall due again, instead of all at once.
pub const CATCH_UP: Duration = Duration::from_secs(5);

/// A recording being played, and how far it has got.
pub struct Playback {
    file: ReplayFile,
    speed: f64,
    ping: PingPolicy,
    passes: Passes,
    timeline: Timeline,
    /// How each message is rewritten, unless the playback is verbatim.
    looping: Option<Looping>,
    /// When the playback started, once it has: the moment its first entry was due.
    clock: Mutex<Option<Clock>>,
    /// The next websocket frame to send, counted over every pass.
    cursor: AtomicUsize,
    /// For HTTP: response indices per path, and the next response of each path,
    /// counted over every pass.
    by_path: HashMap<String, Vec<usize>>,
    next: Mutex<HashMap<String, usize>>,
    connections: AtomicU64,
    pongs: AtomicU64,
    requests: AtomicU64,
}

/// The playback clock's start, on the monotonic clock (for pacing) and on the wall
/// clock (for the times written into messages).
#[derive(Debug, Clone, Copy)]
struct Clock {
    instant: Instant,
    wall: OffsetDateTime,
}

impl Clock {
    fn now() -> Self {
        Self {
            instant: Instant::now(),
            wall: OffsetDateTime::now_utc(),
        }
    }
}

impl Playback {
    /// `speed` 1 plays at the recorded pace, 10 ten times faster; it must be positive.
    pub fn new(file: ReplayFile, speed: f64, ping: PingPolicy, passes: Passes) -> Arc<Self> {
        let mut by_path: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, response) in file.responses.iter().enumerate() {
            by_path
                .entry(response.path().to_owned())
                .or_default()
                .push(index);
        }
        let looping = (passes != Passes::Verbatim).then(|| Looping::new(&file));
        Arc::new(Self {
            timeline: Timeline::new(&file),
            looping,
            file,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
            ping,
            passes,
            clock: Mutex::new(None),
            cursor: AtomicUsize::new(0),
            by_path,
            next: Mutex::new(HashMap::new()),
            connections: AtomicU64::new(0),
            pongs: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    pub fn file(&self) -> &ReplayFile {
        &self.file
    }

    pub fn passes(&self) -> Passes {
        self.passes
    }

    /// Websocket frames sent so far, over every pass.
    pub fn frames_sent(&self) -> usize {
        self.cursor.load(Ordering::SeqCst)
    }

    /// The pass the next websocket frame belongs to (0 for the first).
    pub fn pass(&self) -> u64 {
        match self.file.frames.len() {
            0 => 0,
            length => (self.frames_sent() / length) as u64,
        }
    }

    /// Every frame sent, or for HTTP every response answered at least once. A playback
    /// that loops forever never finishes.
    pub fn finished(&self) -> bool {
        if self.passes == Passes::Forever {
            return false;
        }
        match self.file.header.feed {
            Feed::Http => {
                let next = self.next.lock().unwrap_or_else(|e| e.into_inner());
                self.by_path
                    .iter()
                    .all(|(path, list)| next.get(path).copied().unwrap_or(0) >= list.len())
            }
            _ => self.frames_sent() >= self.file.frames.len(),
        }
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn pongs(&self) -> u64 {
        self.pongs.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The playback clock, started now if it has not started yet.
    fn clock(&self) -> Clock {
        *self
            .clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Clock::now)
    }

    /// The clock for a websocket client that starts receiving at `position`: started
    /// now for the first, and moved on for one that comes back after more than
    /// [`CATCH_UP`], so that it receives from now on instead of a flood of old frames.
    fn resume(&self, position: usize) -> Clock {
        let mut clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        let current = clock.get_or_insert_with(Clock::now);
        if let Some((frame, pass)) = self.frame_at(position) {
            let due = current.instant + self.timeline.due(pass, frame.at, self.speed);
            let late = Instant::now().saturating_duration_since(due);
            if late > CATCH_UP {
                current.instant += late;
                current.wall += late;
            }
        }
        *current
    }

    /// The websocket frame at `position`, counted over every pass, with its pass.
    fn frame_at(&self, position: usize) -> Option<(&Frame, u64)> {
        let length = self.file.frames.len();
        if length == 0 || self.passes != Passes::Forever && position >= length {
            return None;
        }
        Some((
            &self.file.frames[position % length],
            (position / length) as u64,
        ))
    }

    /// The response at `position` of a path's `list`, counted over every pass, with its
    /// pass.
    fn response_at(&self, list: &[usize], position: usize) -> Option<(&Recorded, u64)> {
        let length = list.len();
        if length == 0 || self.passes != Passes::Forever && position >= length {
            return None;
        }
        let response = self.file.responses.get(list[position % length])?;
        Some((response, (position / length) as u64))
    }

    /// Where the playback of pass `pass` stands on `clock`.
    fn pass_on(&self, pass: u64, clock: Clock) -> Pass {
        Pass {
            number: pass,
            started: clock.wall,
            speed: self.speed,
        }
    }
}

/// A running replay server. Dropping it does not stop it; [`ReplayServer::stop`] does.
pub struct ReplayServer {
    addr: SocketAddr,
    playback: Arc<Playback>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    playback: Arc<Playback>,
    cancel: CancellationToken,
}

impl ReplayServer {
    /// Binds `addr` (port 0 for any) on loopback and starts playing.
    pub async fn start(addr: SocketAddr, playback: Arc<Playback>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let shared = Shared {
            playback: playback.clone(),
            cancel: cancel.clone(),
        };
        let router = match playback.file.header.feed {
            Feed::Http => Router::new().fallback(http_get),
            Feed::Binance | Feed::Coinbase => Router::new().fallback(websocket),
        }
        .with_state(shared);
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "replay server stopped with an error");
            }
        });
        Ok(Self {
            addr,
            playback,
            cancel,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn playback(&self) -> &Arc<Playback> {
        &self.playback
    }

    /// The URL a connector uses to reach this server: for a websocket feed, the
    /// recorded URL's path and query on this address; for HTTP, the base URL.
    pub fn url(&self) -> String {
        let header = &self.playback.file.header;
        match header.feed {
            Feed::Http => format!("http://{}", self.addr),
            Feed::Binance | Feed::Coinbase => {
                let rest = header
                    .url
                    .split_once("://")
                    .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
                    .unwrap_or("/");
                format!("ws://{}{rest}", self.addr)
            }
        }
    }

    /// Stops listening and cuts every connection, as a crashed server would (what
    /// was already written to a socket still arrives).
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

async fn websocket(State(shared): State<Shared>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| async move {
        shared.playback.connections.fetch_add(1, Ordering::SeqCst);
        session(socket, shared).await;
    })
}

/// Channels named in the recorded subscribe messages.
fn channels(messages: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<String> {
    let mut channels: Vec<String> = messages
        .into_iter()
        .filter_map(|text| serde_json::from_str::<Value>(text.as_ref()).ok())
        .filter(|v| v.get("type").and_then(Value::as_str) == Some("subscribe"))
        .filter_map(|v| v.get("channel").and_then(Value::as_str).map(str::to_owned))
        .collect();
    channels.sort();
    channels.dedup();
    channels
}

async fn session(socket: WebSocket, shared: Shared) {
    let playback = &shared.playback;
    let (mut tx, mut rx) = socket.split();
    let needed = channels(&playback.file.sends);
    let mut subscribed: Vec<String> = Vec::new();
    let mut position = playback.cursor.load(Ordering::SeqCst);
    // The playback clock, once this client receives frames: Binance's at once,
    // Coinbase's once it has subscribed to every recorded channel.
    let mut clock = (playback.file.header.feed == Feed::Binance || needed.is_empty())
        .then(|| playback.resume(position));
    let mut ping =
        tokio::time::interval_at(Instant::now() + playback.ping.every, playback.ping.every);
    let mut waiting_since: Option<Instant> = None;
    loop {
        let next = clock.and_then(|clock| {
            let (frame, pass) = playback.frame_at(position)?;
            let due = clock.instant + playback.timeline.due(pass, frame.at, playback.speed);
            Some((frame, playback.pass_on(pass, clock), due))
        });
        let due = next.as_ref().map_or_else(Instant::now, |(_, _, due)| *due);
        tokio::select! {
            () = shared.cancel.cancelled() => {
                // Read what the client sent for a moment, so that closing the socket
                // sends a FIN rather than a reset that could discard frames in flight.
                let _ = tokio::time::timeout(Duration::from_millis(100), async {
                    while let Some(Ok(_)) = rx.next().await {}
                })
                .await;
                return;
            }
            () = tokio::time::sleep_until(due), if next.is_some() => {
                let Some((frame, pass, _)) = next else { continue };
                let text = match &playback.looping {
                    Some(looping) => looping.frame(&frame.text, &pass),
                    None => frame.text.clone(),
                };
                if tx.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
                playback.cursor.fetch_max(position + 1, Ordering::SeqCst);
                position += 1;
                if is_server_shutdown(&frame.text) {
                    let _ = tx.send(Message::Close(None)).await;
                    return;
                }
            }
            _ = ping.tick() => {
                if let Some(since) = waiting_since {
                    if since.elapsed() >= playback.ping.pong_timeout {
                        tracing::info!("replay server drops a client that did not pong");
                        return;
                    }
                } else {
                    waiting_since = Some(Instant::now());
                }
                if tx.send(Message::Ping(b"coinfold".as_slice().into())).await.is_err() {
                    return;
                }
            }
            message = rx.next() => match message {
                Some(Ok(Message::Pong(_))) => {
                    playback.pongs.fetch_add(1, Ordering::SeqCst);
                    waiting_since = None;
                }
                Some(Ok(Message::Text(text))) => {
                    subscribed.extend(channels([text.as_str()]));
                    if let Some(reply) = binance_reply(text.as_str())
                        && tx.send(Message::Text(reply.into())).await.is_err() {
                            return;
                        }
                    if clock.is_none() && needed.iter().all(|c| subscribed.contains(c)) {
                        clock = Some(playback.resume(position));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}

fn is_server_shutdown(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| {
        let data = v.get("data").unwrap_or(&v);
        data.get("e").and_then(Value::as_str) == Some("serverShutdown")
    })
}

/// Binance answers a `SUBSCRIBE`/`UNSUBSCRIBE` request with `{"result":null,"id":…}`.
fn binance_reply(text: &str) -> Option<String> {
    let request: Value = serde_json::from_str(text).ok()?;
    let method = request.get("method")?.as_str()?;
    if !matches!(method, "SUBSCRIBE" | "UNSUBSCRIBE" | "LIST_SUBSCRIPTIONS") {
        return None;
    }
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    Some(serde_json::json!({ "result": null, "id": id }).to_string())
}

async fn http_get(State(shared): State<Shared>, OriginalUri(uri): OriginalUri) -> Response {
    let playback = &shared.playback;
    playback.requests.fetch_add(1, Ordering::SeqCst);
    let path = uri.path();
    let Some(list) = playback.by_path.get(path) else {
        return (
            StatusCode::NOT_FOUND,
            format!("{{\"error\":\"{path} is not in the recording\"}}"),
        )
            .into_response();
    };
    let (recorded, pass) = {
        let mut next = playback.next.lock().unwrap_or_else(|e| e.into_inner());
        let clock = playback.clock();
        let position = next.get(path).copied().unwrap_or(0);
        let due = playback
            .response_at(list, position)
            .is_some_and(|(response, pass)| {
                position == 0
                    || clock.instant + playback.timeline.due(pass, response.at, playback.speed)
                        <= Instant::now()
            });
        let answered = if due {
            next.insert(path.to_owned(), position + 1);
            position
        } else {
            // The one answered last again.
            position.saturating_sub(1)
        };
        let Some((recorded, pass)) = playback.response_at(list, answered) else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        (recorded, playback.pass_on(pass, clock))
    };
    let body = match &playback.looping {
        Some(looping) => looping.body(recorded, &pass),
        None => recorded.body.clone(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK);
    let content_type = if recorded.body.trim_start().starts_with('<') {
        "application/xml"
    } else {
        "application/json"
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in &recorded.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_channels_are_read_from_messages() {
        let sends = [
            r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"ticker"}"#,
            r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"heartbeats"}"#,
            r#"{"type":"unsubscribe","channel":"level2"}"#,
            "garbage",
        ];
        assert_eq!(channels(sends), vec!["heartbeats", "ticker"]);
    }

    #[test]
    fn binance_requests_get_their_answer_and_shutdowns_are_seen() {
        assert_eq!(
            binance_reply(r#"{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}"#)
                .as_deref(),
            Some(r#"{"id":1,"result":null}"#)
        );
        assert_eq!(binance_reply(r#"{"type":"subscribe"}"#), None);
        assert!(is_server_shutdown(
            r#"{"stream":"x","data":{"e":"serverShutdown","E":1}}"#
        ));
        assert!(!is_server_shutdown(r#"{"e":"aggTrade"}"#));
    }
}
