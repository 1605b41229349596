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
//! The position in the recording lives in the [`Playback`], not in the server: stop a
//! server mid-stream and start another on the same port with the same playback, and it
//! goes on where the first stopped, which is how the tests kill the "exchange" and see
//! the connector reconnect and receive the rest. One client at a time is the intended
//! use: two clients share the one position.

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
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::replay::{Feed, ReplayFile};

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

/// A recording being played, and how far it has got.
pub struct Playback {
    file: ReplayFile,
    speed: f64,
    ping: PingPolicy,
    /// The next websocket frame to send.
    cursor: AtomicUsize,
    /// For HTTP: response indices per path, and the state of the playback clock.
    by_path: HashMap<String, Vec<usize>>,
    http: Mutex<HttpState>,
    connections: AtomicU64,
    pongs: AtomicU64,
    requests: AtomicU64,
}

#[derive(Default)]
struct HttpState {
    started: Option<Instant>,
    next: HashMap<String, usize>,
}

impl Playback {
    /// `speed` 1 plays at the recorded pace, 10 ten times faster; it must be positive.
    pub fn new(file: ReplayFile, speed: f64, ping: PingPolicy) -> Arc<Self> {
        let mut by_path: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, response) in file.responses.iter().enumerate() {
            by_path
                .entry(response.path().to_owned())
                .or_default()
                .push(index);
        }
        Arc::new(Self {
            file,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
            ping,
            cursor: AtomicUsize::new(0),
            by_path,
            http: Mutex::new(HttpState::default()),
            connections: AtomicU64::new(0),
            pongs: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    pub fn file(&self) -> &ReplayFile {
        &self.file
    }

    /// Websocket frames sent so far.
    pub fn frames_sent(&self) -> usize {
        self.cursor.load(Ordering::SeqCst)
    }

    /// Every frame sent, or for HTTP every response answered at least once.
    pub fn finished(&self) -> bool {
        match self.file.header.feed {
            Feed::Http => {
                let state = self.http.lock().unwrap_or_else(|e| e.into_inner());
                self.by_path
                    .iter()
                    .all(|(path, list)| state.next.get(path).copied().unwrap_or(0) >= list.len())
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

    /// The recorded gap between two times, at playback speed.
    fn scaled(&self, from: time::OffsetDateTime, to: time::OffsetDateTime) -> Duration {
        let seconds = (to - from).as_seconds_f64().max(0.0) / self.speed;
        Duration::from_secs_f64(seconds.min(3_600.0))
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
    let mut streaming = playback.file.header.feed == Feed::Binance || needed.is_empty();
    let mut index = playback.cursor.load(Ordering::SeqCst);
    let mut due = Instant::now();
    let mut ping =
        tokio::time::interval_at(Instant::now() + playback.ping.every, playback.ping.every);
    let mut waiting_since: Option<Instant> = None;
    loop {
        let next = playback.file.frames.get(index).filter(|_| streaming);
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
                let Some(frame) = next else { continue };
                if tx.send(Message::Text(frame.text.clone().into())).await.is_err() {
                    return;
                }
                playback.cursor.fetch_max(index + 1, Ordering::SeqCst);
                index += 1;
                if let Some(following) = playback.file.frames.get(index) {
                    due = Instant::now() + playback.scaled(frame.at, following.at);
                }
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
                    if !streaming && needed.iter().all(|c| subscribed.contains(c)) {
                        streaming = true;
                        due = Instant::now();
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
    let chosen = {
        let mut state = playback.http.lock().unwrap_or_else(|e| e.into_inner());
        let started = *state.started.get_or_insert_with(Instant::now);
        let first = playback
            .file
            .responses
            .first()
            .map(|r| r.at)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let next = state.next.get(path).copied().unwrap_or(0);
        let due = list.get(next).is_some_and(|&i| {
            next == 0 || playback.scaled(first, playback.file.responses[i].at) <= started.elapsed()
        });
        if due {
            state.next.insert(path.to_owned(), next + 1);
            list[next]
        } else {
            list[next.saturating_sub(1).min(list.len() - 1)]
        }
    };
    let recorded = &playback.file.responses[chosen];
    let mut response = Response::new(Body::from(recorded.body.clone()));
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
