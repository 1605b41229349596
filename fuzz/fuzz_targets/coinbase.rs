#![no_main]
//! Any bytes as a Coinbase Advanced Trade frame, and the sequence numbers it carries.
use coinfold_projections::ingest::coinbase;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = coinbase::parse(data, time::OffsetDateTime::UNIX_EPOCH) {
        let mut tracker = coinbase::SequenceTracker::default();
        if let Some(sequence) = message.sequence_num {
            tracker.observe(sequence);
            tracker.observe(sequence.wrapping_add(2));
        }
    }
});
