//! `coinfold project` (and the `projections` commands) as child processes of a test,
//! in the test's own database, topic prefix and consumer groups; and tick producing.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coinfold_projections::ingest::Tick;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A port free on 127.0.0.1 now, for a child process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process that is killed (SIGKILL) when the test lets go of it, even by
/// panicking.
pub struct Running(pub Child);

impl Running {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Asks it to stop (SIGTERM, as Kubernetes does) and waits up to `patience` for it
    /// to exit; true when it exited successfully.
    pub async fn stop(mut self, patience: Duration) -> bool {
        let sent = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !sent {
            return false;
        }
        let deadline = tokio::time::Instant::now() + patience;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status.success();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `coinfold` binary pointed at a test's database and topic prefix.
pub struct Projector {
    pub url: String,
    pub prefix: String,
}

impl Projector {
    /// Pointed at the test's own database, with a fresh topic prefix.
    pub fn for_test(pool: &sqlx::PgPool) -> Self {
        let database = pool.connect_options().get_database().unwrap().to_owned();
        Self {
            url: super::common::url_with_database(
                &std::env::var("DATABASE_URL").expect("DATABASE_URL is set"),
                &database,
            ),
            prefix: format!("test-{}.", uuid::Uuid::new_v4().simple()),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_coinfold"));
        command
            .args(args)
            .arg("--config-dir")
            .arg(super::common::CONFIG_DIR)
            .env("DATABASE_URL", &self.url)
            .env("COINFOLD_KAFKA__TOPIC_PREFIX", &self.prefix)
            .env(
                "COINFOLD_PROJECTIONS__GROUP_PREFIX",
                format!("{}projections", self.prefix),
            )
            .env("COINFOLD_PROJECTIONS__ALERTS", "false")
            .env("COINFOLD_PROJECTIONS__BATCH_SIZE", "500");
        command
    }

    /// `coinfold project --only …` in the consumer groups `{prefix}{groups}.<name>`;
    /// its output shows only with `TEST_LOG` set.
    pub fn spawn(&self, groups: &str, only: &[&str]) -> Running {
        let mut args = vec!["project"];
        for name in only {
            args.extend(["--only", name]);
        }
        self.command(&args)
            .env(
                "COINFOLD_PROJECTIONS__GROUP_PREFIX",
                format!("{}{groups}", self.prefix),
            )
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .map(Running)
            .expect("coinfold project starts")
    }
}

/// Produces `ticks` to `topic`, keyed by coin, all in flight at once; `partition` picks
/// a tick's partition (None: the key's hash does).
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    ticks: &[Tick],
    partition: impl Fn(&Tick) -> Option<i32>,
) {
    let sends = ticks.iter().map(|tick| {
        let body = serde_json::to_vec(tick).expect("a tick serializes");
        let key = tick.coin.as_str().to_owned();
        let dedupe = tick.dedupe_key();
        let at = partition(tick);
        async move {
            // With the `dedupe-key` header, as ingest sends them.
            let headers = OwnedHeaders::new().insert(Header {
                key: "dedupe-key",
                value: Some(dedupe.as_bytes()),
            });
            let mut record = FutureRecord::to(topic)
                .key(&key)
                .payload(&body)
                .headers(headers);
            if let Some(p) = at {
                record = record.partition(p);
            }
            producer
                .send(record, Duration::from_secs(30))
                .await
                .map(|_| ())
                .map_err(|(e, _)| e)
        }
    });
    for result in futures_util::future::join_all(sends).await {
        result.expect("tick delivered");
    }
}
