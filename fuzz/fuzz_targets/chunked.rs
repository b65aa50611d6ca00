//! `ChunkedDecoder` on arbitrary bytes: never panics, and decoding the input fed whole
//! or in pieces gives the same data, end and error.

#![no_main]

use anon_fuzz::{config, run_chunked, splits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flags, seed, input @ ..] = data else {
        return;
    };
    let config = config(*flags);
    let whole = run_chunked(&config, input, None);
    let pieces = splits(*seed, input.len());
    let split = run_chunked(&config, input, Some(&pieces));
    assert_eq!(whole, split);
    if let Some((consumed, _)) = &whole.end {
        assert!(*consumed <= input.len());
    }
    if whole.error.is_none() {
        assert!(whole.data.len() as u64 <= config.limits.max_body);
    }
});
