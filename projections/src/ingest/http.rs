//! One polite GET for the pollers (CoinGecko, RSS, NewsAPI): a 429 waits for the
//! `Retry-After` the server asks (else the next backoff delay), any other failure backs
//! off, and a success starts the backoff over.

use std::time::Duration;

use super::connector::{Backoff, ConnectorStats};

/// The pollers' client: a timeout per request, and a user agent naming coinfold.
pub fn client(timeout_ms: u64) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms))
        .user_agent(concat!("coinfold/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

pub enum Fetched {
    Body(Vec<u8>),
    /// Not now: try again after this long.
    Later(Duration),
}

pub async fn fetch(
    source: &'static str,
    request: reqwest::RequestBuilder,
    stats: &ConnectorStats,
    backoff: &mut Backoff,
    max_delay: Duration,
) -> Fetched {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            let delay = backoff.next_delay();
            // Without the URL: a query string may carry a key.
            tracing::warn!(source, error = %error.without_url(), delay_ms = delay.as_millis() as u64, "request failed");
            return Fetched::Later(delay);
        }
    };
    ConnectorStats::add(&stats.connections, 1);
    let status = response.status();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        ConnectorStats::add(&stats.rate_limited, 1);
        let asked = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let delay = asked.unwrap_or_else(|| backoff.next_delay()).min(max_delay);
        tracing::warn!(
            source,
            delay_ms = delay.as_millis() as u64,
            "rate limited: backing off"
        );
        return Fetched::Later(delay);
    }
    if !status.is_success() {
        let delay = backoff.next_delay();
        tracing::warn!(
            source,
            status = status.as_u16(),
            delay_ms = delay.as_millis() as u64,
            "the server answered an error"
        );
        return Fetched::Later(delay);
    }
    match response.bytes().await {
        Ok(body) => {
            backoff.reset();
            ConnectorStats::add(&stats.messages, 1);
            Fetched::Body(body.to_vec())
        }
        Err(error) => {
            let delay = backoff.next_delay();
            tracing::warn!(source, error = %error.without_url(), "the body could not be read");
            Fetched::Later(delay)
        }
    }
}
