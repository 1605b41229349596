//! News: RSS/Atom feeds and NewsAPI into [`Article`]s on `coinfold.news.articles`.
//!
//! An article is known by the SHA-256 of its canonical URL (scheme and host in lower
//! case, no fragment, no `utm_*` parameters), which is its key on the topic and what the
//! pollers deduplicate on: a story seen in two feeds, or on two polls, goes out once.
//!
//! ## Coin tagging
//!
//! [`CoinTagger`] names the coins an article is about, from its title and summary:
//! 1. a cashtag (`$LINK`, `$btc`) always tags its coin;
//! 2. a coin's name tags it, matched as whole words in any case ("Chainlink",
//!    "shiba inu"), except names that are ordinary words ("near", "polygon" is kept
//!    because it is rare in news otherwise; NEAR needs "NEAR Protocol");
//! 3. a ticker symbol tags its coin only when written in capitals as a word of its
//!    own ("BTC", "SOL") and the text is not all in capitals (a shouted headline says
//!    nothing by its case);
//! 4. a symbol that is also an English word (LINK, DOT, ONE, NEAR, GAS, SAND, OP,
//!    GRT is not one, ICP is not) tags its coin in capitals only when the text also has
//!    crypto context: a context word (crypto, token, coin, blockchain, defi, staking,
//!    oracle, …) or another coin tagged by rules 1–3. "Click the link" and "LINK
//!    between rates and jobs" tag nothing; "LINK token jumps 9%" tags Chainlink.

use std::collections::{HashSet, VecDeque};

use coinfold_domain::values::CoinSymbol;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{ParseError, short};

/// Version of the [`Article`] message.
pub const ARTICLE_SCHEMA: u32 = 1;

/// One news article, whatever its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    pub schema: u32,
    /// SHA-256 of the canonical URL, hex.
    pub id: String,
    pub url: String,
    pub title: String,
    pub summary: Option<String>,
    /// The publication: "CoinDesk", a feed's title, NewsAPI's source name.
    pub source: String,
    pub author: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub published_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub fetched_at: OffsetDateTime,
    /// Which poller found it: `rss:<feed name>` or `newsapi`.
    pub feed: String,
    pub coins: Vec<CoinSymbol>,
}

/// The URL an article is known by.
pub fn canonical_url(url: &str) -> String {
    let url = url.trim();
    let url = url.split('#').next().unwrap_or_default();
    let (scheme_host, rest) = match url.find("://") {
        Some(at) => {
            let after = &url[at + 3..];
            let end = after.find(['/', '?']).map_or(url.len(), |i| at + 3 + i);
            (url[..end].to_ascii_lowercase(), &url[end..])
        }
        None => (String::new(), url),
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.to_ascii_lowercase().starts_with("utm_"))
        .collect();
    let path = if path.is_empty() { "/" } else { path };
    if kept.is_empty() {
        format!("{scheme_host}{path}")
    } else {
        format!("{scheme_host}{path}?{}", kept.join("&"))
    }
}

pub fn article_id(url: &str) -> String {
    let digest = Sha256::digest(canonical_url(url).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text of at most `max` characters with tags and runs of white space removed.
fn plain(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if in_tag => {}
            _ => out.push(c),
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    words.join(" ").chars().take(max).collect()
}

/// What a feed or NewsAPI says of one entry.
struct Parts<'a> {
    url: Option<String>,
    title: Option<&'a str>,
    summary: Option<&'a str>,
    source: &'a str,
    author: Option<&'a str>,
    published_at: Option<OffsetDateTime>,
    fetched_at: OffsetDateTime,
    feed: &'a str,
}

/// An article from its parts, tags stripped and lengths bounded, tagged with its
/// coins; `None` without a URL or a title.
fn build(parts: Parts<'_>, tagger: &CoinTagger) -> Option<Article> {
    let url = parts.url.filter(|u| !u.trim().is_empty())?;
    let title = plain(parts.title?, 300);
    if title.is_empty() {
        return None;
    }
    let summary = parts
        .summary
        .map(|s| plain(s, 1_000))
        .filter(|s| !s.is_empty());
    let coins = tagger.tag(&format!("{title}\n{}", summary.as_deref().unwrap_or("")));
    Some(Article {
        schema: ARTICLE_SCHEMA,
        id: article_id(&url),
        url,
        title,
        summary,
        source: parts.source.to_owned(),
        author: parts
            .author
            .map(|a| plain(a, 100))
            .filter(|a| !a.is_empty()),
        published_at: parts.published_at,
        fetched_at: parts.fetched_at,
        feed: parts.feed.to_owned(),
        coins,
    })
}

fn from_chrono_seconds(seconds: i64, nanos: u32) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .map(|t| t + time::Duration::nanoseconds(i64::from(nanos)))
}

/// Reads an RSS 2.0, RSS 1.0, Atom or JSON feed. Entries without a title or a link
/// are reported one by one; the rest of the feed still reads.
pub fn parse_feed(
    raw: &[u8],
    feed_name: &str,
    fetched_at: OffsetDateTime,
    tagger: &CoinTagger,
) -> Result<Articles, ParseError> {
    let parsed = feed_rs::parser::parse(raw)
        .map_err(|e| ParseError::new(format!("not a feed: {}", short(&e.to_string()))))?;
    let source = parsed
        .title
        .as_ref()
        .map(|t| plain(&t.content, 100))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| feed_name.to_owned());
    let feed_label = format!("rss:{feed_name}");
    let feed = feed_label.as_str();
    let mut articles = Vec::new();
    let mut problems = Vec::new();
    for (index, entry) in parsed.entries.into_iter().enumerate() {
        let url = entry
            .links
            .first()
            .map(|l| l.href.trim().to_owned())
            .or_else(|| {
                (entry.id.starts_with("http://") || entry.id.starts_with("https://"))
                    .then(|| entry.id.clone())
            });
        let built = build(
            Parts {
                url,
                title: entry.title.as_ref().map(|t| t.content.as_str()),
                summary: entry.summary.as_ref().map(|t| t.content.as_str()),
                source: &source,
                author: entry.authors.first().and_then(|a| a.name.as_deref()),
                published_at: entry
                    .published
                    .or(entry.updated)
                    .and_then(|t| from_chrono_seconds(t.timestamp(), t.timestamp_subsec_nanos())),
                fetched_at,
                feed,
            },
            tagger,
        );
        match built {
            Some(article) => articles.push(article),
            None => problems.push(ParseError::new(format!(
                "entry {index}: no title or no link"
            ))),
        }
    }
    Ok((articles, problems))
}

/// A NewsAPI answer that is an error (`rateLimited`, `apiKeyInvalid`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NewsAPI error {code}: {message}")]
pub struct NewsApiError {
    pub code: String,
    pub message: String,
}

#[derive(Deserialize)]
struct NewsApiAnswer {
    status: String,
    code: Option<String>,
    message: Option<String>,
    #[serde(default)]
    articles: Vec<NewsApiArticle>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewsApiArticle {
    source: Option<NewsApiSource>,
    author: Option<String>,
    title: Option<String>,
    description: Option<String>,
    url: Option<String>,
    published_at: Option<String>,
}

#[derive(Deserialize)]
struct NewsApiSource {
    name: Option<String>,
}

/// The articles of a page that read, and a reason for each entry that did not.
pub type Articles = (Vec<Article>, Vec<ParseError>);

/// Reads a NewsAPI `/v2/everything` answer: its articles, or the error it reports.
pub fn parse_newsapi(
    raw: &[u8],
    fetched_at: OffsetDateTime,
    tagger: &CoinTagger,
) -> Result<Result<Articles, NewsApiError>, ParseError> {
    let answer: NewsApiAnswer = serde_json::from_slice(raw)
        .map_err(|e| ParseError::new(format!("not a NewsAPI answer: {e}")))?;
    if answer.status != "ok" {
        return Ok(Err(NewsApiError {
            code: answer.code.unwrap_or_else(|| "unknown".to_owned()),
            message: short(&answer.message.unwrap_or_default()),
        }));
    }
    let mut articles = Vec::new();
    let mut problems = Vec::new();
    for (index, item) in answer.articles.into_iter().enumerate() {
        let published_at = match item.published_at.as_deref().map(|t| {
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|_| short(t))
        }) {
            Some(Err(bad)) => {
                problems.push(ParseError::new(format!(
                    "article {index}: publishedAt {bad:?}"
                )));
                continue;
            }
            Some(Ok(at)) => Some(at),
            None => None,
        };
        let source = item.source.and_then(|s| s.name);
        let built = build(
            Parts {
                url: item.url,
                title: item.title.as_deref(),
                summary: item.description.as_deref(),
                source: source.as_deref().unwrap_or("NewsAPI"),
                author: item.author.as_deref(),
                published_at,
                fetched_at,
                feed: "newsapi",
            },
            tagger,
        );
        match built {
            Some(article) => articles.push(article),
            None => problems.push(ParseError::new(format!("article {index}: no url or title"))),
        }
    }
    Ok(Ok((articles, problems)))
}

/// Remembers the last `capacity` article ids, to pass each article on once.
#[derive(Debug)]
pub struct Seen {
    capacity: usize,
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Seen {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    /// True the first time an id is offered.
    pub fn first_time(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(id.to_owned());
        self.set.insert(id.to_owned());
        true
    }
}

/// One coin the tagger knows.
#[derive(Debug, Clone)]
pub struct KnownCoin {
    pub symbol: CoinSymbol,
    /// Lower-case names, one or more words each.
    pub names: Vec<String>,
    /// The symbol is also an English word: it needs crypto context (rule 4).
    pub ambiguous_symbol: bool,
}

/// Words that make an ambiguous ticker mean a coin (rule 4).
const CONTEXT: &[&str] = &[
    "crypto",
    "cryptocurrency",
    "cryptocurrencies",
    "token",
    "tokens",
    "coin",
    "coins",
    "blockchain",
    "defi",
    "staking",
    "stake",
    "oracle",
    "oracles",
    "altcoin",
    "altcoins",
    "exchange",
    "binance",
    "coinbase",
    "wallet",
    "onchain",
    "on-chain",
    "mainnet",
    "airdrop",
    "etf",
    "whales",
    "stablecoin",
    "web3",
    "dex",
    "parachain",
    "validator",
    "validators",
];

/// Names the coins a text is about (see the module's rules).
#[derive(Debug, Clone)]
pub struct CoinTagger {
    coins: Vec<KnownCoin>,
}

fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '$' || c == '-'))
        .map(|w| w.trim_matches('-'))
        .filter(|w| !w.is_empty())
        .collect()
}

impl CoinTagger {
    pub fn new(coins: Vec<KnownCoin>) -> Self {
        Self { coins }
    }

    /// The coins coinfold follows by default, with their names and ambiguity.
    pub fn default_coins() -> Self {
        let table: &[(&str, &[&str], bool)] = &[
            ("BTC", &["bitcoin"], false),
            ("ETH", &["ethereum", "ether"], false),
            ("SOL", &["solana"], false),
            ("ADA", &["cardano"], false),
            ("DOGE", &["dogecoin"], false),
            ("XRP", &["ripple"], false),
            ("BNB", &["bnb chain"], false),
            ("LINK", &["chainlink"], true),
            ("DOT", &["polkadot"], true),
            ("AVAX", &["avalanche"], false),
            ("LTC", &["litecoin"], false),
            ("POL", &["polygon"], false),
            ("UNI", &["uniswap"], true),
            ("AAVE", &["aave"], false),
            ("TRX", &["tron"], false),
            ("SHIB", &["shiba inu"], false),
            ("TON", &["toncoin"], true),
            ("NEAR", &["near protocol"], true),
            ("ATOM", &["cosmos hub"], true),
            ("XLM", &["stellar lumens"], false),
            ("OP", &["optimism"], true),
            ("ARB", &["arbitrum"], false),
            ("ONE", &["harmony one"], true),
            ("GAS", &["neo gas"], true),
            ("SAND", &["the sandbox"], true),
            ("USDT", &["tether"], false),
            ("USDC", &["usd coin"], false),
        ];
        Self::new(
            table
                .iter()
                .filter_map(|(symbol, names, ambiguous)| {
                    Some(KnownCoin {
                        symbol: CoinSymbol::parse(symbol).ok()?,
                        names: names.iter().map(|n| (*n).to_owned()).collect(),
                        ambiguous_symbol: *ambiguous,
                    })
                })
                .collect(),
        )
    }

    /// The coins of a text, in the tagger's order, each once.
    pub fn tag(&self, text: &str) -> Vec<CoinSymbol> {
        let tokens = words(text);
        let lower: Vec<String> = tokens
            .iter()
            .map(|w| w.trim_start_matches('$').to_lowercase())
            .collect();
        let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
        let shouting = !letters.is_empty() && letters.iter().all(|c| !c.is_lowercase());
        let has_phrase = |phrase: &str| {
            let parts: Vec<&str> = phrase.split(' ').collect();
            lower
                .windows(parts.len())
                .any(|w| w.iter().zip(&parts).all(|(a, b)| a == b))
        };
        let sure = |coin: &KnownCoin| {
            let symbol = coin.symbol.as_str();
            tokens.iter().any(|w| {
                w.strip_prefix('$')
                    .is_some_and(|s| s.eq_ignore_ascii_case(symbol))
            }) || coin.names.iter().any(|n| has_phrase(n))
        };
        let in_capitals =
            |coin: &KnownCoin| !shouting && tokens.iter().any(|w| *w == coin.symbol.as_str());
        let mut tagged: Vec<CoinSymbol> = Vec::new();
        for coin in &self.coins {
            if sure(coin) || (!coin.ambiguous_symbol && in_capitals(coin)) {
                tagged.push(coin.symbol.clone());
            }
        }
        let context = !tagged.is_empty() || lower.iter().any(|w| CONTEXT.contains(&w.as_str()));
        if context {
            for coin in &self.coins {
                if coin.ambiguous_symbol && !tagged.contains(&coin.symbol) && in_capitals(coin) {
                    tagged.push(coin.symbol.clone());
                }
            }
        }
        tagged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn tags(text: &str) -> Vec<String> {
        CoinTagger::default_coins()
            .tag(text)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn ambiguous_words_are_not_mis_tagged() {
        // Ordinary words that are also tickers tag nothing.
        assert!(tags("Click the link to read the full report").is_empty());
        assert!(tags("Bank draws a LINK between rates and jobs").is_empty());
        assert!(tags("Gas prices near a record high as winter approaches").is_empty());
        assert!(tags("ONE year on, the city's DOT program expands").is_empty());
        assert!(tags("Sol Campbell joins club board").is_empty());
        assert!(
            tags("LINK TOKEN JUMPS AS ORACLE NETWORK GROWS").is_empty(),
            "shouting says nothing by case"
        );
        // With context, the same tickers are coins.
        assert_eq!(
            tags("LINK token jumps 9% as oracle network grows"),
            ["LINK"]
        );
        assert_eq!(tags("$link surges after staking launch"), ["LINK"]);
        assert_eq!(
            tags("Chainlink and Polkadot lead altcoin gains"),
            ["LINK", "DOT"]
        );
        assert_eq!(
            tags("BTC and DOT rally"),
            ["BTC", "DOT"],
            "another coin is context"
        );
        assert_eq!(tags("NEAR Protocol unveils sharding upgrade"), ["NEAR"]);
    }

    #[test]
    fn names_symbols_and_cashtags_tag_their_coins() {
        assert_eq!(
            tags("Bitcoin ETF inflows top $1B; ETH follows"),
            ["BTC", "ETH"]
        );
        assert_eq!(tags("Shiba Inu burns 1B tokens"), ["SHIB"]);
        assert_eq!(tags("Ether slips as SOL climbs"), ["ETH", "SOL"]);
        assert_eq!(
            tags("btc is lower case, so not a ticker"),
            Vec::<String>::new()
        );
        assert_eq!(tags("Dogecoin's meme rally"), ["DOGE"]);
    }

    #[test]
    fn urls_are_canonical_and_ids_stable() {
        assert_eq!(
            canonical_url(
                " HTTPS://WWW.CoinDesk.com/markets/2024/01/15/x/?utm_source=rss&id=7#top "
            ),
            "https://www.coindesk.com/markets/2024/01/15/x/?id=7"
        );
        assert_eq!(
            article_id("https://a.io/x?utm_medium=feed"),
            article_id("https://A.io/x")
        );
        assert_eq!(article_id("https://a.io/x").len(), 64);
    }

    #[test]
    fn feeds_read_with_missing_fields_and_bad_entries_apart() {
        let rss = br#"<?xml version="1.0"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>CoinDesk</title>
<item><title><![CDATA[Bitcoin <b>jumps</b> past $70,000]]></title><link>https://www.coindesk.com/a?utm_source=rss</link>
<guid>a</guid><description>BTC rallies.</description><pubDate>Mon, 15 Jan 2024 18:00:00 +0000</pubDate><dc:creator>Jane</dc:creator></item>
<item><description>no title, no link</description></item>
<item><title>Ether upgrade scheduled</title><link>https://www.coindesk.com/b</link></item>
</channel></rss>"#;
        let now = datetime!(2024-01-15 18:05 UTC);
        let (articles, problems) =
            parse_feed(rss, "coindesk", now, &CoinTagger::default_coins()).unwrap();
        assert_eq!(articles.len(), 2);
        assert_eq!(problems.len(), 1);
        assert_eq!(articles[0].title, "Bitcoin jumps past $70,000");
        assert_eq!(articles[0].source, "CoinDesk");
        assert_eq!(articles[0].author.as_deref(), Some("Jane"));
        assert_eq!(
            articles[0].published_at,
            Some(datetime!(2024-01-15 18:00 UTC))
        );
        assert_eq!(articles[0].coins, vec![CoinSymbol::parse("BTC").unwrap()]);
        assert_eq!(articles[1].published_at, None);
        for bad in [
            &b""[..],
            b"<rss",
            b"{\"not\":\"a feed\"}",
            b"\xff\xfe<\x00r\x00",
        ] {
            assert!(parse_feed(bad, "x", now, &CoinTagger::default_coins()).is_err());
        }
    }

    #[test]
    fn newsapi_answers_and_errors_read() {
        let ok = br#"{"status":"ok","totalResults":2,"articles":[
            {"source":{"id":null,"name":"CoinDesk"},"author":null,"title":"Solana outage halts blocks","description":"SOL slips","url":"https://x.io/1","urlToImage":null,"publishedAt":"2024-01-15T18:00:00Z","content":"... [+4500 chars]"},
            {"source":{"id":null,"name":"X"},"title":null,"url":"https://x.io/2"},
            {"source":null,"title":"Ether climbs","url":"https://x.io/3","publishedAt":"yesterday"}]}"#;
        let now = datetime!(2024-01-15 18:05 UTC);
        let (articles, problems) = parse_newsapi(ok, now, &CoinTagger::default_coins())
            .unwrap()
            .unwrap();
        // A bad entry, even a bad date, costs that entry alone.
        assert_eq!((articles.len(), problems.len()), (1, 2));
        assert!(
            problems[1].to_string().contains("publishedAt"),
            "{problems:?}"
        );
        assert_eq!(articles[0].coins, vec![CoinSymbol::parse("SOL").unwrap()]);
        let limited = br#"{"status":"error","code":"rateLimited","message":"You have made too many requests"}"#;
        assert_eq!(
            parse_newsapi(limited, now, &CoinTagger::default_coins())
                .unwrap()
                .unwrap_err()
                .code,
            "rateLimited"
        );
        assert!(parse_newsapi(b"[]", now, &CoinTagger::default_coins()).is_err());
    }

    #[test]
    fn seen_ids_pass_once_within_capacity() {
        let mut seen = Seen::new(2);
        assert!(seen.first_time("a"));
        assert!(!seen.first_time("a"));
        assert!(seen.first_time("b"));
        assert!(seen.first_time("c"));
        assert!(seen.first_time("a"), "a was forgotten after two newer ids");
    }
}
