#![no_main]
//! Any bytes as a Binance websocket frame: a message or a reason, never a panic.
use coinfold_projections::ingest::binance;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = binance::parse(data, time::OffsetDateTime::UNIX_EPOCH);
});
