//! The websocket connector loop shared by Binance and Coinbase: connect, subscribe,
//! read with an idle timeout, reconnect with backoff, for as long as it is asked to.
//!
//! The protocol-specific part ([`Protocol`]) is synchronous and pure: it says what to
//! send on opening and what each frame means. Pings are answered by tungstenite itself
//! (it queues the pong and this loop flushes it); a socket that has been silent for
//! longer than the idle timeout (no frame, no ping, no heartbeat) is taken for dead.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_util::sync::CancellationToken;

use super::connector::{BackoffSettings, Closed, ConnectorStats, Emitter, Ingested};
use super::{ParseError, TICKS_TOPIC};

/// Timing of one websocket connector (configuration, in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WebsocketSettings {
    pub connect_timeout_ms: u64,
    /// No frame at all for this long: the connection is dead.
    pub idle_timeout_ms: u64,
    /// Reconnect before the server's own limit (Binance: 24 h).
    pub max_connection_age_ms: u64,
    pub backoff: BackoffSettings,
}

impl Default for WebsocketSettings {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connection_age_ms: 23 * 3_600_000,
            backoff: BackoffSettings::default(),
        }
    }
}

/// What a frame means for the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Close this connection and open a new one (e.g. Binance's `serverShutdown`).
    Reconnect(&'static str),
}

/// What a frame became. (A frame that does not read is the protocol's `Err`, which
/// this loop sends to the dead-letter topic; `out` is what goes to the topics.)
#[derive(Debug)]
pub struct Handled {
    pub out: Vec<Ingested>,
    pub flow: Flow,
}

impl Handled {
    pub fn ticks(ticks: Vec<super::Tick>) -> Self {
        Self {
            out: ticks.into_iter().map(Ingested::Tick).collect(),
            flow: Flow::Continue,
        }
    }

    pub fn nothing() -> Self {
        Self {
            out: Vec::new(),
            flow: Flow::Continue,
        }
    }
}

/// The part of a websocket connector that knows the exchange.
pub trait Protocol: Send {
    fn url(&self) -> &str;
    /// Messages to send once the socket is open (subscriptions).
    fn on_open(&mut self) -> Vec<String>;
    /// One text frame; `Err` sends it to the dead-letter topic.
    fn on_text(
        &mut self,
        raw: &[u8],
        received: OffsetDateTime,
        stats: &ConnectorStats,
    ) -> Result<Handled, ParseError>;
}

/// Why a connection ended.
#[derive(Debug)]
enum Ended {
    Cancelled,
    Closed(Closed),
    Reconnect(String),
}

/// Runs until `cancel` fires or the producer goes away.
pub async fn run<P: Protocol>(
    mut protocol: P,
    settings: WebsocketSettings,
    emit: Emitter,
    cancel: CancellationToken,
) {
    let mut backoff = settings.backoff.backoff();
    let mut opened_before = false;
    loop {
        let started = Instant::now();
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            result = tokio::time::timeout(
                Duration::from_millis(settings.connect_timeout_ms),
                tokio_tungstenite::connect_async(protocol.url()),
            ) => result,
        };
        let reason = match connected {
            Ok(Ok((socket, _))) => {
                ConnectorStats::add(&emit.stats.connections, 1);
                if opened_before {
                    ConnectorStats::add(&emit.stats.reconnects, 1);
                }
                opened_before = true;
                tracing::info!(source = emit.source, "connected");
                match session(socket, &mut protocol, &settings, &emit, &cancel).await {
                    Ended::Cancelled => return,
                    Ended::Closed(Closed) => {
                        tracing::info!(source = emit.source, "producer gone; connector stops");
                        return;
                    }
                    Ended::Reconnect(reason) => reason,
                }
            }
            Ok(Err(error)) => format!("connect failed: {error}"),
            Err(_) => "connect timed out".to_owned(),
        };
        // A connection that lasted a while worked: begin the backoff again.
        if started.elapsed() > Duration::from_secs(30) {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::warn!(source = emit.source, %reason, delay_ms = delay.as_millis() as u64, "reconnecting");
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

async fn session<P: Protocol>(
    mut socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    protocol: &mut P,
    settings: &WebsocketSettings,
    emit: &Emitter,
    cancel: &CancellationToken,
) -> Ended {
    for message in protocol.on_open() {
        if let Err(error) = socket.send(Message::Text(message.into())).await {
            return Ended::Reconnect(format!("subscribe failed: {error}"));
        }
    }
    let retire = Instant::now() + Duration::from_millis(settings.max_connection_age_ms);
    let idle = Duration::from_millis(settings.idle_timeout_ms);
    loop {
        let next = tokio::select! {
            () = cancel.cancelled() => {
                let _ = socket.close(None).await;
                return Ended::Cancelled;
            }
            () = tokio::time::sleep_until(retire) => {
                let _ = socket.close(None).await;
                return Ended::Reconnect("the connection reached its maximum age".to_owned());
            }
            next = tokio::time::timeout(idle, socket.next()) => next,
        };
        let received = OffsetDateTime::now_utc();
        let (raw, text): (Bytes, bool) = match next {
            Err(_) => return Ended::Reconnect(format!("nothing received for {idle:?}")),
            Ok(None) => return Ended::Reconnect("the server closed the connection".to_owned()),
            Ok(Some(Err(error))) => return Ended::Reconnect(format!("read failed: {error}")),
            Ok(Some(Ok(Message::Text(text)))) => (text.into(), true),
            Ok(Some(Ok(Message::Binary(bytes)))) => (bytes, false),
            Ok(Some(Ok(Message::Ping(_)))) => {
                // tungstenite has queued the pong; send it now.
                if let Err(error) = socket.flush().await {
                    return Ended::Reconnect(format!("pong failed: {error}"));
                }
                continue;
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Ended::Reconnect(format!("the server closed the connection: {frame:?}"));
            }
            Ok(Some(Ok(_))) => continue,
        };
        ConnectorStats::add(&emit.stats.messages, 1);
        let handled = if text {
            protocol.on_text(&raw, received, &emit.stats)
        } else {
            Err(ParseError::new("a binary frame where text was expected"))
        };
        let result = match handled {
            Ok(handled) => {
                let mut sent = Ok(());
                for message in handled.out {
                    sent = emit.send(message).await;
                    if sent.is_err() {
                        break;
                    }
                }
                if let (Ok(()), Flow::Reconnect(why)) = (&sent, handled.flow) {
                    let _ = socket.close(None).await;
                    return Ended::Reconnect(why.to_owned());
                }
                sent
            }
            Err(reason) => emit.dead_letter(TICKS_TOPIC, &raw, &reason, received).await,
        };
        if let Err(closed) = result {
            return Ended::Closed(closed);
        }
    }
}
