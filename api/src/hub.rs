//! Fan-out of the projections' Redis notifications to this instance's subscribers.
//!
//! One Redis pub/sub connection per API instance. A channel (`coinfold.price.BTC`,
//! …; see `coinfold_projections::projection::notify`) is subscribed upstream when its
//! first local subscriber arrives and unsubscribed when its last one leaves; every
//! local subscriber of a channel shares that one upstream through a broadcast channel.
//! Every instance subscribes for its own clients, so clients of two instances both
//! receive every update.
//!
//! If the connection drops, the reader connects again (with a growing pause) and
//! subscribes to every channel still wanted. Notifications published meanwhile are
//! lost: they are doorbells, and a subscriber reads current values from the read
//! models (the `events` subscription reads the log itself and loses nothing).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::broadcast;

use coinfold_projections::projection::notify::channel;

/// Messages a slow subscriber may fall behind by before it skips to the newest.
const BACKLOG: usize = 1024;

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    prefix: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Set while connected.
    sink: Option<PubSubSink>,
    /// Whether the reader task runs.
    reading: bool,
    channels: HashMap<String, broadcast::Sender<Arc<str>>>,
}

/// A subscription to one channel; unsubscribes upstream when the last one is dropped.
pub struct Subscription {
    pub receiver: broadcast::Receiver<Arc<str>>,
    hub: Hub,
    channel: String,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self
            .hub
            .inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(sender) = state.channels.get(&self.channel) else {
            return;
        };
        // This receiver is still counted until it is dropped, right after this.
        if sender.receiver_count() > 1 {
            return;
        }
        state.channels.remove(&self.channel);
        if let Some(mut sink) = state.sink.clone() {
            let channel = self.channel.clone();
            tokio::spawn(async move {
                if let Err(error) = sink.unsubscribe(&channel).await {
                    tracing::debug!(%error, channel, "unsubscribing failed");
                }
            });
        }
    }
}

impl Hub {
    /// `prefix`: the deployment's prefix, the same the projections publish with.
    pub fn new(client: redis::Client, prefix: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                prefix: prefix.to_owned(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Subscribes to a notification topic (`price.BTC`, `alert.<owner id>`, …).
    pub async fn subscribe(&self, topic: &str) -> Subscription {
        let channel = channel(&self.inner.prefix, topic);
        let (receiver, sink, start) = {
            let mut state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            let start = !state.reading;
            state.reading = true;
            let fresh = !state.channels.contains_key(&channel);
            let receiver = state
                .channels
                .entry(channel.clone())
                .or_insert_with(|| broadcast::channel(BACKLOG).0)
                .subscribe();
            (receiver, fresh.then(|| state.sink.clone()).flatten(), start)
        };
        if start {
            tokio::spawn(read(self.clone()));
        }
        if let Some(mut sink) = sink
            && let Err(error) = sink.subscribe(&channel).await
        {
            // The reader resubscribes every wanted channel when it reconnects.
            tracing::warn!(%error, channel, "subscribing failed");
        }
        Subscription {
            receiver,
            hub: self.clone(),
            channel,
        }
    }

    /// How many channels this instance subscribes upstream.
    pub fn channels(&self) -> usize {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .channels
            .len()
    }
}

/// Connects, subscribes to what is wanted, and hands out messages until the
/// connection drops; then again.
async fn read(hub: Hub) {
    let mut pause = Duration::from_millis(100);
    loop {
        match hub.inner.client.get_async_pubsub().await {
            Ok(pubsub) => {
                pause = Duration::from_millis(100);
                let (mut sink, mut stream) = pubsub.split();
                let wanted: Vec<String> = {
                    let mut state = hub.inner.state.lock().unwrap_or_else(|e| e.into_inner());
                    state.sink = Some(sink.clone());
                    state.channels.keys().cloned().collect()
                };
                if !wanted.is_empty()
                    && let Err(error) = sink.subscribe(&wanted).await
                {
                    tracing::warn!(%error, "subscribing again failed");
                }
                while let Some(message) = stream.next().await {
                    let Ok(payload) = message.get_payload::<String>() else {
                        continue;
                    };
                    let state = hub.inner.state.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(sender) = state.channels.get(message.get_channel_name()) {
                        let _ = sender.send(Arc::from(payload));
                    }
                }
                hub.inner
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .sink = None;
                tracing::warn!("the Redis subscription connection dropped; connecting again");
            }
            Err(error) => {
                tracing::warn!(%error, "cannot open a Redis subscription connection");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}
