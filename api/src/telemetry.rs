//! Logging: `tracing` events as JSON lines, filtered by `RUST_LOG`.
//!
//! Log a failure once, where it is handled. Never put a token, password, secret URL or
//! e-mail address in a field: settings hold secrets as `SecretString`, whose `Debug`
//! is redacted, so `?settings` is safe to log.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber: JSON lines on `writer`, the level from `RUST_LOG`
/// or else `default_filter`. `log` records (librdkafka, sqlx) are forwarded too.
/// Returns false when a subscriber was already installed (tests call it repeatedly).
pub fn init<W>(default_filter: &str, writer: W) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init()
        .is_ok()
}
