#![no_main]
//! Any bytes as a CoinGecko `/simple/price` or `/coins/markets` answer.
use std::collections::BTreeMap;

use coinfold_domain::values::{CoinId, CoinSymbol, QuoteCurrency};
use coinfold_projections::ingest::coingecko;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let coins: BTreeMap<CoinId, CoinSymbol> = [("bitcoin", "BTC"), ("ethereum", "ETH")]
        .into_iter()
        .filter_map(|(id, s)| Some((CoinId::parse(id).ok()?, CoinSymbol::parse(s).ok()?)))
        .collect();
    let currencies: Vec<QuoteCurrency> =
        ["USD", "EUR"].iter().filter_map(|c| QuoteCurrency::parse(c).ok()).collect();
    let _ = coingecko::parse_simple_price(data, time::OffsetDateTime::UNIX_EPOCH, &coins, &currencies);
    let _ = coingecko::parse_markets(data);
});
