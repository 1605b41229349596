//! Subscriptions: commit → `events` subscriber latency at a fixed rate, and `prices`
//! fan-out to many subscribers of a separate `coinfold serve` process.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use coinfold_domain::values::{CoinSymbol, Price, QuoteCurrency};
use coinfold_projections::ingest::producer::producer_config;
use coinfold_projections::ingest::{Source, TICK_SCHEMA, TICKS_TOPIC, Tick, TickKind};
use coinfold_tests::ws::WsClient;
use futures_util::{SinkExt, StreamExt};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::report::{Figure, Latencies, number};
use crate::{Bench, record_trade};

const EVENTS: &str = "subscription($after: Int!) { events(after: $after) { \
    globalPosition aggregateId eventType recordedAt } }";

/// `latency_events` trades recorded at `latency_rate` a second while one graphql-ws
/// client follows `events`: from each event's recorded time (set in the appending
/// transaction, just before it commits) to its arrival at the subscriber.
pub async fn latency(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let count = bench.sizes.latency_events;
    let rate = bench.sizes.latency_rate;
    let portfolio = bench.create_portfolio("latency").await;
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(&bench.pool)
        .await?;
    let mut ws = WsClient::connect(
        bench.app.address,
        json!({ "authorization": format!("Bearer {}", bench.session.token) }),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    ws.subscribe(EVENTS, json!({ "after": head })).await;

    let (http, url, token, id) = (
        bench.app.http.clone(),
        bench.app.url("/graphql"),
        bench.session.token.clone(),
        portfolio.clone(),
    );
    let writer = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let start = time::macros::datetime!(2025-06-01 00:00 UTC);
        let mut round_trips = Vec::with_capacity(count);
        for n in 0..count {
            every.tick().await;
            let trade = json!({
                "side": "BUY", "coin": "ETH", "quantity": "1", "price": "3000",
                "executedAt": (start + time::Duration::seconds(n as i64)).format(&Rfc3339)?,
            });
            round_trips.push(record_trade(&http, &url, &token, &id, trade).await?);
        }
        anyhow::Ok(round_trips)
    });

    let mut latencies = Vec::with_capacity(count);
    while latencies.len() < count {
        let payload = ws
            .next(Duration::from_secs(30))
            .await
            .with_context(|| format!("{} of {count} events arrived", latencies.len()))?;
        let arrived = OffsetDateTime::now_utc();
        let event = &payload["data"]["events"];
        if event["aggregateId"] != portfolio.as_str() || event["eventType"] != "TradeRecorded" {
            continue;
        }
        let recorded = event["recordedAt"]
            .as_str()
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
            .with_context(|| format!("no recordedAt in {event}"))?;
        latencies.push((arrived - recorded).try_into().unwrap_or(Duration::ZERO));
    }
    let round_trips = Latencies::new(writer.await??);
    let latencies = Latencies::new(latencies);
    Ok(vec![
        Figure::new(
            "latency",
            format!("commit → events subscriber p99, {rate}/s"),
            latencies.ms(99.0),
            "ms",
        )
        .lower_is_better()
        .detail("delivery", latencies.summary())
        .detail("recordTrade round trip", round_trips.summary()),
    ])
}

/// The soft limit on open files of this process (the server it starts inherits it).
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(1024)
}

/// A process's resident and peak resident memory, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `coinfold serve` as a child process on a free port, with the bench's database,
/// topics and signing key; killed when dropped.
struct Server {
    child: std::process::Child,
    address: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(bench: &Bench) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?
            .parent()
            .context("the bench's directory")?
            .join("coinfold");
        anyhow::ensure!(
            exe.exists(),
            "{} is missing: build it beside the bench (scripts/bench.sh does)",
            exe.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let settings = &bench.app.settings;
        let secret = settings
            .auth
            .jwt_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_default();
        let mut child = std::process::Command::new(exe)
            .arg("serve")
            .env("DATABASE_URL", &bench.database_url)
            .env("REDIS_URL", settings.redis.url.expose_secret())
            .env("KAFKA_BROKERS", &settings.kafka.brokers)
            .env("COINFOLD_KAFKA__TOPIC_PREFIX", &settings.kafka.topic_prefix)
            .env("COINFOLD_APPLICATION__PORT", port.to_string())
            .env("COINFOLD_GRAPHQL__IP_REQUESTS_PER_MINUTE", "0")
            .env("COINFOLD_GRAPHQL__USER_REQUESTS_PER_MINUTE", "0")
            .env("COINFOLD_AUTH__JWT_SECRET", secret)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("coinfold serve exited: {status}");
            }
            if let Ok(response) = reqwest::get(format!("http://{address}/health")).await
                && response.status().is_success()
            {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "coinfold serve did not answer /health in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self { child, address })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

fn text(value: Value) -> Message {
    Message::Text(value.to_string().into())
}

/// An anonymous graphql-ws client from `source`, acknowledged and subscribed to
/// `prices(coins: ["BTC"])`.
async fn subscribe(source: Ipv4Addr, server: SocketAddr) -> anyhow::Result<Socket> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let stream = socket.connect(server).await?;
    let mut request = format!("ws://{server}/graphql/ws").into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    // Small buffers: tens of thousands of these share this process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    ws.send(text(json!({ "type": "connection_init", "payload": {} })))
        .await?;
    loop {
        let Some(message) = ws.next().await else {
            anyhow::bail!("closed before connection_ack");
        };
        if let Message::Text(body) = message? {
            let value: Value = serde_json::from_str(&body)?;
            anyhow::ensure!(
                value["type"] == "connection_ack",
                "no connection_ack: {value}"
            );
            break;
        }
    }
    ws.send(text(json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription { prices(coins: [\"BTC\"]) { price at } }" } })))
        .await?;
    Ok(ws)
}

/// What a worker's subscribers received: each update's exchange time (ms since the
/// epoch) and its delay in ms.
type Arrivals = Arc<Mutex<Vec<(i64, u32)>>>;

/// Reads a subscriber's updates until the socket closes, noting each one's arrival.
async fn follow(mut ws: Socket, arrivals: Arrivals) -> anyhow::Result<()> {
    while let Some(message) = ws.next().await {
        let Message::Text(body) = message? else {
            continue;
        };
        let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let value: Value = serde_json::from_str(&body)?;
        match value["type"].as_str() {
            Some("ping") => ws.send(text(json!({ "type": "pong" }))).await?,
            Some("next") => {
                let at = value["payload"]["data"]["prices"]["at"]
                    .as_str()
                    .and_then(|at| {
                        OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                            .ok()
                    });
                if let Some(at) = at.map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64) {
                    let delay = u32::try_from((now_ms - at).max(0)).unwrap_or(u32::MAX);
                    arrivals.lock().await.push((at, delay));
                }
            }
            Some("error") => anyhow::bail!("subscription refused: {value}"),
            _ => {}
        }
    }
    Ok(())
}

/// `coinfold-bench --fanout-worker ADDRESS --count N --source IP`: N anonymous
/// subscribers of the server at ADDRESS, from IP, in a process of their own (each holds
/// an open file, and a process may hold only so many). Prints `connected C failed F`
/// once every subscriber has connected or failed; when its standard input closes,
/// prints every update received as `<exchange time ms> <delay ms>` and exits.
pub async fn worker(server: SocketAddr, count: usize, source: Ipv4Addr) -> anyhow::Result<()> {
    let arrivals: Arrivals = Arc::new(Mutex::new(Vec::new()));
    let connected = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let (connected, failures, gate, arrivals) = (
            connected.clone(),
            failures.clone(),
            gate.clone(),
            arrivals.clone(),
        );
        tasks.spawn(async move {
            // At most 256 handshakes at once.
            let permit = gate.acquire_owned().await;
            let result = match subscribe(source, server).await {
                Ok(ws) => {
                    drop(permit);
                    connected.fetch_add(1, Ordering::Relaxed);
                    follow(ws, arrivals).await
                }
                Err(error) => Err(error),
            };
            if let Err(error) = result
                && failures.fetch_add(1, Ordering::Relaxed) < 3
            {
                eprintln!("   a subscriber failed: {error:#}");
            }
        });
    }
    let started = Instant::now();
    while connected.load(Ordering::Relaxed) + failures.load(Ordering::Relaxed) < count
        && started.elapsed() < Duration::from_secs(600)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "connected {} failed {}",
        connected.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed)
    );
    std::io::Write::flush(&mut std::io::stdout())?;
    tokio::task::spawn_blocking(|| std::io::read_to_string(std::io::stdin())).await??;
    tasks.abort_all();
    let arrivals = arrivals.lock().await;
    let mut out = String::with_capacity(arrivals.len() * 20);
    for (at, delay) in arrivals.iter() {
        out.push_str(&format!("{at} {delay}\n"));
    }
    print!("{out}");
    std::io::Write::flush(&mut std::io::stdout())?;
    Ok(())
}

/// A worker process and what it reports.
struct Worker {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    /// The `connected C failed F` line, then every arrival, as its stdout gives them.
    first_line: tokio::sync::oneshot::Receiver<String>,
    rest: tokio::task::JoinHandle<Vec<(i64, u32)>>,
}

impl Worker {
    fn start(server: SocketAddr, count: usize, source: Ipv4Addr) -> anyhow::Result<Self> {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["--fanout-worker", &server.to_string()])
            .args(["--worker-count", &count.to_string()])
            .args(["--worker-source", &source.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("the worker's stdout")?;
        let (first_tx, first_line) = tokio::sync::oneshot::channel();
        let rest = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = first_tx.send(first);
            lines
                .map_while(Result::ok)
                .filter_map(|line| {
                    let (at, delay) = line.split_once(' ')?;
                    Some((at.parse().ok()?, delay.parse().ok()?))
                })
                .collect()
        });
        Ok(Self {
            child,
            stdin,
            first_line,
            rest,
        })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `subscribers` graphql-ws clients on `prices` of BTC, while a BTC tick is produced
/// every second: how long each update takes from the tick's exchange time to every
/// subscriber, and the servers' memory. A process may hold only so many open files
/// (one per connection on each side), so beyond that limit the subscribers are spread
/// over several `coinfold serve` processes, each with a client worker process of its
/// own on its own source address (127.0.0.2, .3, …); Redis fans every update out to
/// all of them, as it does between API instances.
pub async fn fanout(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let per_process = open_files_limit().saturating_sub(2_048).clamp(1, 20_000);
    let count = bench.sizes.subscribers;
    let processes = count.div_ceil(per_process).max(1);
    anyhow::ensure!(
        processes <= 250,
        "{count} subscribers need {processes} servers"
    );
    let mut servers = Vec::with_capacity(processes);
    for _ in 0..processes {
        servers.push(Server::start(bench).await?);
    }
    let rss = |servers: &[Server]| -> (f64, f64) {
        servers
            .iter()
            .map(|s| memory_mib(s.pid()))
            .fold((0.0, 0.0), |(a, b), (c, d)| (a + c, b + d))
    };
    let (rss_idle, _) = rss(&servers);
    let connecting = Instant::now();
    let mut workers = Vec::with_capacity(processes);
    for (k, server) in servers.iter().enumerate() {
        let share = count / processes + usize::from(k < count % processes);
        let source = Ipv4Addr::new(127, 0, 0, 2 + k as u8);
        workers.push(Worker::start(server.address, share, source)?);
    }
    let (mut subscribed, mut failed) = (0usize, 0usize);
    for worker in &mut workers {
        let line = (&mut worker.first_line).await.unwrap_or_default();
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("connected"), Some(c), Some("failed"), Some(f)) => {
                subscribed += c.parse::<usize>().unwrap_or(0);
                failed += f.parse::<usize>().unwrap_or(0);
            }
            _ => anyhow::bail!("a fan-out worker said {line:?}"),
        }
    }
    let connect_seconds = connecting.elapsed().as_secs_f64();
    anyhow::ensure!(subscribed > 0, "no subscriber connected");
    // Subscriptions start after connection_ack: a moment for the last ones.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_connected, _) = rss(&servers);

    let settings = &bench.app.settings;
    let topic = format!("{}{TICKS_TOPIC}", settings.kafka.topic_prefix);
    let producer: FutureProducer =
        producer_config(&settings.kafka.brokers, "bench-fanout").create()?;
    let seconds = bench.sizes.fanout_seconds;
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let mut measured_from = i64::MAX;
    // One update before measuring: the producer's first send also connects it.
    for n in 0..=seconds {
        every.tick().await;
        let now = OffsetDateTime::now_utc();
        if n == 1 {
            measured_from = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        }
        let tick = Tick {
            schema: TICK_SCHEMA,
            source: Source::Coinbase,
            kind: TickKind::Ticker,
            coin: CoinSymbol::parse("BTC")?,
            quote: QuoteCurrency::usd(),
            // A new price each second, so each is an update.
            price: Price::new(Decimal::new(
                7_000_000 + n as i64 * 100 + (now.millisecond() as i64),
                2,
            ))?,
            size: None,
            side: None,
            trade_id: None,
            volume_24h: None,
            exchange_time: now,
            received_time: now,
        };
        let body = serde_json::to_vec(&tick)?;
        producer
            .send(
                FutureRecord::to(&topic).key("BTC").payload(&body),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_end, rss_peak) = rss(&servers);
    // Closing a worker's input makes it report what arrived.
    let mut delays = Vec::new();
    for worker in &mut workers {
        drop(worker.stdin.take());
    }
    for worker in &mut workers {
        let arrivals = (&mut worker.rest).await?;
        delays.extend(
            arrivals
                .into_iter()
                .filter(|(at, _)| *at >= measured_from)
                .map(|(_, delay)| Duration::from_millis(u64::from(delay))),
        );
    }
    drop(workers);
    drop(servers);
    let delays = Latencies::new(delays);
    let expected = subscribed * seconds as usize;
    let servers_word = if processes == 1 { "server" } else { "servers" };
    Ok(vec![
        Figure::new(
            "fanout",
            format!(
                "delivery p99, {} subscribers, 1 update/s",
                number(subscribed as f64)
            ),
            delays.ms(99.0),
            "ms",
        )
        .lower_is_better()
        .detail(
            "delivery (tick exchange time → subscriber)",
            delays.summary(),
        )
        .detail(
            "delivered",
            format!(
                "{} of {}",
                number(delays.len() as f64),
                number(expected as f64)
            ),
        )
        .detail(
            "connected in",
            format!("{connect_seconds:.1} s, {processes} {servers_word} and client processes"),
        )
        .detail("failed", failed.to_string()),
        Figure::new(
            "fanout",
            format!(
                "RSS of {processes} {servers_word}, {} subscribers",
                number(subscribed as f64)
            ),
            rss_end,
            "MiB",
        )
        .lower_is_better()
        .detail("idle", format!("{rss_idle:.0} MiB"))
        .detail("connected", format!("{rss_connected:.0} MiB"))
        .detail("peaks summed", format!("{rss_peak:.0} MiB"))
        .detail(
            "per subscriber",
            format!(
                "{:.1} KiB",
                (rss_end - rss_idle).max(0.0) * 1024.0 / subscribed as f64
            ),
        ),
    ])
}
