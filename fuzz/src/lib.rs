//! Shared harness of the fuzz targets: drive a decoder over an input fed whole and fed
//! in pieces, and reduce what it said to comparable owned values.

use anon_http::{
    Chunk, ChunkedDecoder, Config, Error, Event, Leniency, MessageDecoder, Request, Trailers,
};

/// A configuration with the leniency switches picked by the bits of `flags` and small
/// limits, so that the fuzzer reaches them.
pub fn config(flags: u8) -> Config {
    let mut c = Config {
        leniency: Leniency {
            allow_bare_lf: flags & 1 != 0,
            skip_leading_empty_lines: flags & 2 != 0,
            accept_higher_minor_version: flags & 4 != 0,
            allow_duplicate_content_length: flags & 8 != 0,
        },
        ..Config::default()
    };
    if flags & 16 != 0 {
        c.limits.max_request_line = 64;
        c.limits.max_header_section = 256;
        c.limits.max_headers = 8;
        c.limits.max_body = 512;
        c.limits.max_chunk_extension = 16;
        c.limits.max_trailer_section = 64;
    }
    c
}

/// Piece sizes from a seed: a tiny xorshift, pieces of 1..=16 bytes (1 when the seed
/// is 0, so every byte is its own read).
pub fn splits(seed: u8, len: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut x = u32::from(seed) | 0x9E37_0000;
    let mut total = 0;
    while total < len {
        let n = if seed == 0 {
            1
        } else {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 16 + 1) as usize
        };
        out.push(n);
        total += n;
    }
    out
}

/// A request head reduced to owned values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub framing: String,
    pub host: Option<Vec<u8>>,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub head_len: usize,
}

impl Head {
    pub fn of(r: &Request<'_>) -> Head {
        Head {
            method: r.method().to_owned(),
            target: r.target().to_owned(),
            version: r.version().as_str().to_owned(),
            headers: r
                .headers()
                .map(|h| (h.name().to_owned(), h.value().to_vec()))
                .collect(),
            framing: format!("{:?}", r.framing()),
            host: r.host().map(<[u8]>::to_vec),
            keep_alive: r.keep_alive(),
            expect_continue: r.expect_continue(),
            head_len: r.head_len(),
        }
    }
}

pub fn trailers(t: &Trailers<'_>) -> Vec<(String, Vec<u8>)> {
    t.iter()
        .map(|h| (h.name().to_owned(), h.value().to_vec()))
        .collect()
}

/// What a chunked body decoded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedOutcome {
    pub data: Vec<u8>,
    pub end: Option<(usize, Vec<(String, Vec<u8>)>)>,
    pub error: Option<Error>,
}

/// Decodes `input` as a chunked body, fed in pieces of the given sizes (`None`: whole).
pub fn run_chunked(config: &Config, input: &[u8], pieces: Option<&[usize]>) -> ChunkedOutcome {
    let mut dec = ChunkedDecoder::new(config);
    let mut out = ChunkedOutcome {
        data: Vec::new(),
        end: None,
        error: None,
    };
    let mut pos = 0;
    let mut avail = if pieces.is_some() { 0 } else { input.len() };
    let mut next = pieces.unwrap_or(&[]).iter();
    loop {
        match dec.decode(&input[pos..avail]) {
            Err(e) => {
                out.error = Some(e);
                return out;
            }
            Ok((n, Chunk::Data(d))) => {
                assert!(!d.is_empty() && n >= d.len());
                out.data.extend_from_slice(d);
                pos += n;
            }
            Ok((n, Chunk::End(t))) => {
                pos += n;
                out.end = Some((pos, trailers(&t)));
                return out;
            }
            Ok((n, Chunk::Partial)) => {
                pos += n;
                match next.next() {
                    Some(&k) if avail < input.len() => avail = (avail + k).min(input.len()),
                    _ => return out,
                }
            }
        }
        assert!(pos <= avail);
    }
}

/// One decoded message of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Head(Head),
    Body(Vec<u8>),
    End(Vec<(String, Vec<u8>)>),
    Closed,
    Error(Error),
}

/// Decodes `input` as a request stream, fed in pieces (`None`: whole); consecutive body
/// pieces are merged, since only their concatenation is defined. Returns the items and
/// the bytes consumed when the input ran out (0 after an error).
pub fn run_stream(config: &Config, input: &[u8], pieces: Option<&[usize]>) -> (Vec<Item>, usize) {
    let mut dec = MessageDecoder::new(*config);
    let mut items: Vec<Item> = Vec::new();
    let mut pos = 0;
    let mut avail = if pieces.is_some() { 0 } else { input.len() };
    let mut next = pieces.unwrap_or(&[]).iter();
    // Every call consumes bytes or emits an event that changes state; bound the loop
    // anyway so that a bug shows as a failed assertion, not a hang.
    for _ in 0..(input.len() * 4 + 64) {
        let d = match dec.decode(&input[pos..avail]) {
            Err(e) => {
                // How much was consumed before an error is not defined (the connection is
                // done); only the error is compared.
                items.push(Item::Error(e));
                return (items, 0);
            }
            Ok(d) => d,
        };
        pos += d.consumed;
        assert!(pos <= avail);
        match d.event {
            Event::Head(r) => items.push(Item::Head(Head::of(&r))),
            Event::Body(b) => {
                assert!(!b.is_empty());
                if let Some(Item::Body(v)) = items.last_mut() {
                    v.extend_from_slice(b);
                } else {
                    items.push(Item::Body(b.to_vec()));
                }
            }
            Event::End(t) => items.push(Item::End(trailers(&t))),
            Event::Closed => {
                items.push(Item::Closed);
                return (items, pos);
            }
            Event::Partial => match next.next() {
                Some(&k) if avail < input.len() => avail = (avail + k).min(input.len()),
                _ => return (items, pos),
            },
        }
    }
    panic!("decoder made no progress");
}
