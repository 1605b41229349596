//! Figures, their ceilings and ratios; percentiles; the machine the figures come from.

use std::fmt::Write as _;
use std::time::Duration;

use coinfold_api::project::thousands;
use serde_json::{Value, json};

/// One measured figure, beside the raw ceiling measured in the same run.
#[derive(Debug, Clone)]
pub struct Figure {
    pub scenario: &'static str,
    /// What was measured, e.g. "recordTrade over HTTP".
    pub what: String,
    pub value: f64,
    pub unit: &'static str,
    /// True when less is better (latencies, memory).
    pub lower_is_better: bool,
    pub ceiling: Option<Ceiling>,
    /// Other numbers of the same run: percentiles, sizes.
    pub details: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Ceiling {
    pub what: String,
    pub value: f64,
}

impl Figure {
    pub fn new(
        scenario: &'static str,
        what: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            scenario,
            what: what.into(),
            value,
            unit,
            lower_is_better: false,
            ceiling: None,
            details: Vec::new(),
        }
    }

    pub fn lower_is_better(mut self) -> Self {
        self.lower_is_better = true;
        self
    }

    pub fn ceiling(mut self, what: impl Into<String>, value: f64) -> Self {
        self.ceiling = Some(Ceiling {
            what: what.into(),
            value,
        });
        self
    }

    pub fn detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.push((key.into(), value.into()));
        self
    }

    /// coinfold's figure as a share of the ceiling's: above 1 when coinfold is slower
    /// for a latency, below 1 when it is slower for a rate.
    pub fn ratio(&self) -> Option<f64> {
        let ceiling = self.ceiling.as_ref()?;
        (ceiling.value > 0.0).then(|| self.value / ceiling.value)
    }

    pub fn line(&self) -> String {
        let mut line = format!(
            "{:<11} {:<44} {:>12} {}",
            self.scenario,
            self.what,
            number(self.value),
            self.unit
        );
        if let Some(ceiling) = &self.ceiling {
            let _ = write!(
                line,
                " | ceiling {}: {} {}",
                ceiling.what,
                number(ceiling.value),
                self.unit
            );
        }
        if let Some(ratio) = self.ratio() {
            let _ = write!(line, " | ratio {:.1} %", ratio * 100.0);
        }
        for (key, value) in &self.details {
            let _ = write!(line, " | {key} {value}");
        }
        line
    }

    pub fn json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "what": self.what,
            "value": self.value,
            "unit": self.unit,
            "lower_is_better": self.lower_is_better,
            "ceiling": self.ceiling.as_ref().map(|c| json!({ "what": c.what, "value": c.value })),
            "ratio": self.ratio(),
            "details": self.details.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// A number as a person reads it: two decimals below 100, else whole and with
/// thousands separated (as `coinfold projections rebuild` prints them).
pub fn number(value: f64) -> String {
    if !value.is_finite() || value.abs() < 100.0 {
        return format!("{value:.2}");
    }
    let whole = thousands(value.abs().round() as u64);
    if value < 0.0 {
        format!("-{whole}")
    } else {
        whole
    }
}

/// Latencies, sorted once, read by percentile.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile (nearest rank), in milliseconds; 0 when empty.
    pub fn ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.0.len()) - 1;
        self.0[index].as_secs_f64() * 1000.0
    }

    /// "p50 1.23 ms p99 4.56 ms" for a detail.
    pub fn summary(&self) -> String {
        format!(
            "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms, n {}",
            self.ms(50.0),
            self.ms(95.0),
            self.ms(99.0),
            self.ms(100.0),
            self.len()
        )
    }
}

/// The machine and the services, read from the system and from PostgreSQL.
pub async fn machine(pool: &sqlx::PgPool) -> Vec<(String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or_else(
            || "unknown".to_owned(),
            |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let setting = |name: &'static str| async move {
        sqlx::query_scalar::<_, String>(&format!("SHOW {name}"))
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| format!("unknown ({e})"))
    };
    let version = setting("server_version").await;
    let fsync = setting("fsync").await;
    let synchronous_commit = setting("synchronous_commit").await;
    vec![
        ("cpu".into(), format!("{cores} cores, {cpu}")),
        ("memory".into(), memory),
        ("kernel".into(), kernel),
        (
            "postgresql".into(),
            format!("{version}, fsync {fsync}, synchronous_commit {synchronous_commit}"),
        ),
        (
            "build".into(),
            if cfg!(debug_assertions) {
                "debug (figures are not representative; use scripts/bench.sh)".into()
            } else {
                "release".into()
            },
        ),
    ]
}
