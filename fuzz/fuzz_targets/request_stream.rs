//! `MessageDecoder` on arbitrary bytes: never panics, never loops, and the events do not
//! depend on how the stream is split into reads.

#![no_main]

use anon_fuzz::{config, run_stream, splits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flags, seed, input @ ..] = data else {
        return;
    };
    let config = config(*flags);
    let whole = run_stream(&config, input, None);
    let pieces = splits(*seed, input.len());
    let split = run_stream(&config, input, Some(&pieces));
    assert_eq!(whole, split);
});
