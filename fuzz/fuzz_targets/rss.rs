#![no_main]
//! Any bytes as an RSS/Atom/JSON feed, tagged for coins; and as a NewsAPI answer.
use coinfold_projections::ingest::news::{self, CoinTagger};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tagger = CoinTagger::default_coins();
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let _ = news::parse_feed(data, "fuzz", now, &tagger);
    let _ = news::parse_newsapi(data, now, &tagger);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tagger.tag(text);
        let _ = news::canonical_url(text);
    }
});
