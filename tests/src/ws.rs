//! A small graphql-ws client (the `graphql-transport-ws` protocol), as a subscriber
//! uses it: connect, `connection_init` with a credential, `subscribe`, read `next`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl WsClient {
    /// Connects to `/graphql/ws` and initializes with `payload` (e.g.
    /// `{"authorization": "Bearer …"}`); the server's refusal as an error.
    pub async fn connect(address: std::net::SocketAddr, payload: Value) -> Result<Self, String> {
        let mut request = format!("ws://{address}/graphql/ws")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("a header value"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| e.to_string())?;
        let mut client = Self { socket, next_id: 0 };
        client
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        match client.receive(Duration::from_secs(10)).await {
            Some(message) if message["type"] == "connection_ack" => Ok(client),
            other => Err(format!("no connection_ack: {other:?}")),
        }
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("a websocket send");
    }

    /// Starts a subscription; its id.
    pub async fn subscribe(&mut self, query: &str, variables: Value) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.send(json!({
            "id": id, "type": "subscribe",
            "payload": { "query": query, "variables": variables },
        }))
        .await;
        id
    }

    /// Reads until the server closes the connection: its close code, or None when it
    /// stays open for `wait` (pings are answered, other messages skipped).
    pub async fn closed(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??;
            match message {
                Ok(Message::Close(frame)) => return Some(frame.map_or(1005, |f| f.code.into())),
                Ok(Message::Text(text)) if text.contains("\"ping\"") => {
                    self.send(json!({ "type": "pong" })).await;
                }
                Ok(_) => {}
                Err(_) => return Some(1006),
            }
        }
    }

    /// Ends the subscription `id` (the client's `complete`).
    pub async fn complete(&mut self, id: &str) {
        self.send(json!({ "id": id, "type": "complete" })).await;
    }

    /// The next protocol message (pings answered), or None after `wait` or on close.
    pub async fn receive(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?;
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).ok()?;
                    if value["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Some(value);
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The payload of the next `next` message, or None after `wait`. An `error`
    /// message panics with its content.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let message = self.receive(wait).await?;
        match message["type"].as_str() {
            Some("next") => Some(message["payload"].clone()),
            _ => panic!("expected a `next` message, got {message}"),
        }
    }
}
