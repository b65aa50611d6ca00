//! Test harness: drives a `MessageDecoder` over an input fed in pieces and reduces what
//! it said to owned values that compare.

use anon_http::{Config, Error, Event, MessageDecoder, Request, Trailers, Version};

/// A decoded request reduced to owned values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub method: String,
    pub target: String,
    pub version: Version,
    pub headers: Vec<(String, Vec<u8>)>,
    pub host: Option<Vec<u8>>,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, Vec<u8>)>,
}

impl Msg {
    pub fn of(r: &Request<'_>) -> Msg {
        Msg {
            method: r.method().to_owned(),
            target: r.target().to_owned(),
            version: r.version(),
            headers: r
                .headers()
                .map(|h| (h.name().to_owned(), h.value().to_vec()))
                .collect(),
            host: r.host().map(<[u8]>::to_vec),
            keep_alive: r.keep_alive(),
            expect_continue: r.expect_continue(),
            body: Vec::new(),
            trailers: Vec::new(),
        }
    }
}

fn owned(t: &Trailers<'_>) -> Vec<(String, Vec<u8>)> {
    t.iter()
        .map(|h| (h.name().to_owned(), h.value().to_vec()))
        .collect()
}

/// Everything a decoder said about one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Complete messages (head through end), in order.
    pub msgs: Vec<Msg>,
    /// A message whose head was decoded but whose end was not reached.
    pub open: Option<Msg>,
    /// The decoder said `Closed`.
    pub closed: bool,
    pub error: Option<Error>,
    /// Bytes consumed when the input ran out (not compared after an error).
    pub consumed: usize,
}

/// Decodes `input` fed in pieces of the given sizes (cycled; `&[]` means whole).
pub fn decode(config: &Config, input: &[u8], pieces: &[usize]) -> Outcome {
    let mut dec = MessageDecoder::new(*config);
    let mut out = Outcome {
        msgs: Vec::new(),
        open: None,
        closed: false,
        error: None,
        consumed: 0,
    };
    let mut pos = 0;
    let mut avail = if pieces.is_empty() { input.len() } else { 0 };
    let mut next = pieces.iter().cycle();
    for _ in 0..(input.len() * 4 + 64) {
        let d = match dec.decode(&input[pos..avail]) {
            Err(e) => {
                out.error = Some(e);
                return out;
            }
            Ok(d) => d,
        };
        pos += d.consumed;
        assert!(pos <= avail, "consumed past the bytes given");
        match d.event {
            Event::Head(r) => {
                assert!(out.open.is_none(), "head inside a message");
                out.open = Some(Msg::of(&r));
            }
            Event::Body(b) => {
                assert!(!b.is_empty(), "empty body event");
                out.open
                    .as_mut()
                    .expect("body outside a message")
                    .body
                    .extend_from_slice(b);
            }
            Event::End(t) => {
                let mut m = out.open.take().expect("end outside a message");
                m.trailers = owned(&t);
                out.msgs.push(m);
            }
            Event::Closed => {
                out.closed = true;
                out.consumed = pos;
                return out;
            }
            Event::Partial => {
                if avail == input.len() {
                    out.consumed = pos;
                    return out;
                }
                let k = next.next().copied().unwrap_or(input.len());
                avail = (avail + k.max(1)).min(input.len());
            }
        }
    }
    panic!("decoder made no progress");
}

/// Whole, byte by byte, and a few uneven splits must all agree; returns the whole one.
pub fn decode_all_ways(config: &Config, input: &[u8]) -> Outcome {
    let whole = decode(config, input, &[]);
    for pieces in [&[1][..], &[2, 3], &[7, 1, 13], &[64]] {
        let mut split = decode(config, input, pieces);
        let mut w = whole.clone();
        if w.error.is_some() {
            w.consumed = 0;
            split.consumed = 0;
        }
        assert_eq!(split, w, "split {pieces:?} differs from whole");
    }
    whole
}
