//! `parse_request` on arbitrary bytes: never panics, and every prefix of the input
//! parses as `Partial` or exactly as the whole input does.

#![no_main]

use anon_fuzz::{config, Head};
use anon_http::{parse_request, Error, HeaderSlot, Status};
use libfuzzer_sys::fuzz_target;

fn parse(config: &anon_http::Config, input: &[u8]) -> Result<Option<Head>, Error> {
    let mut slots = [HeaderSlot::EMPTY; 128];
    match parse_request(input, config, &mut slots)? {
        Status::Complete(r) => Ok(Some(Head::of(&r))),
        Status::Partial => Ok(None),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let config = config(flags);
    let whole = parse(&config, input);
    if let Ok(Some(h)) = &whole {
        assert!(h.head_len <= input.len());
        assert_eq!(parse(&config, &input[..h.head_len]), whole);
    }
    for cut in [
        input.len() / 3,
        input.len() / 2,
        input.len().saturating_sub(1),
    ] {
        let part = parse(&config, &input[..cut]);
        if part != Ok(None) {
            assert_eq!(part, whole, "prefix of {cut} bytes");
        }
    }
});
