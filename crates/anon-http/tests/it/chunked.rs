//! `ChunkedDecoder` used directly: consumption accounting, splits, terminal states.

use anon_http::{Chunk, ChunkedDecoder, Config, Error};

/// What a decode ended with: data, trailers (if the end was reached), bytes consumed,
/// and the error, if any.
type Run = (
    Vec<u8>,
    Option<Vec<(String, Vec<u8>)>>,
    usize,
    Option<Error>,
);

/// Decodes `input` fed `step` bytes at a time.
fn run(input: &[u8], step: usize) -> Run {
    let mut dec = ChunkedDecoder::new(&Config::default());
    let (mut pos, mut avail, mut data) = (0, step.min(input.len()), Vec::new());
    for _ in 0..input.len() * 4 + 16 {
        match dec.decode(&input[pos..avail]) {
            Err(e) => return (data, None, pos, Some(e)),
            Ok((n, Chunk::Data(d))) => {
                data.extend_from_slice(d);
                pos += n;
            }
            Ok((n, Chunk::End(t))) => {
                let t = t
                    .iter()
                    .map(|h| (h.name().to_owned(), h.value().to_vec()))
                    .collect();
                return (data, Some(t), pos + n, None);
            }
            Ok((n, Chunk::Partial)) => {
                pos += n;
                if avail == input.len() {
                    return (data, None, pos, None);
                }
                avail = (avail + step).min(input.len());
            }
        }
    }
    panic!("no progress");
}

#[test]
fn any_step_gives_the_same_body_and_trailers() {
    let input = b"4;x=\"y\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nA: 1\r\nB: two\r\n\r\nrest";
    let whole = run(input, input.len());
    assert_eq!(whole.0, b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(
        whole.1,
        Some(vec![
            ("A".into(), b"1".to_vec()),
            ("B".into(), b"two".to_vec())
        ])
    );
    assert_eq!(whole.2, input.len() - 4, "stops right after the trailers");
    for step in 1..input.len() {
        assert_eq!(run(input, step), whole, "step {step}");
    }
}

#[test]
fn partial_consumes_chunk_lines_but_keeps_trailers() {
    let mut dec = ChunkedDecoder::new(&Config::default());
    assert_eq!(dec.decode(b"1"), Ok((1, Chunk::Partial)));
    assert_eq!(dec.decode(b"0;a"), Ok((3, Chunk::Partial)));
    assert_eq!(dec.decode(b"\r\n"), Ok((2, Chunk::Partial)));
    assert_eq!(dec.body_len(), 16);
    let data = [b'x'; 16];
    assert_eq!(dec.decode(&data[..10]), Ok((10, Chunk::Data(&data[..10]))));
    assert_eq!(dec.decode(&data[10..]), Ok((6, Chunk::Data(&data[10..]))));
    assert_eq!(dec.decode(b"\r\n0\r\nT: v\r\n"), Ok((5, Chunk::Partial)));
    // The trailer section stays unconsumed until it is complete.
    let (n, c) = dec.decode(b"T: v\r\n\r\n").expect("complete");
    assert_eq!(n, 8);
    assert!(matches!(c, Chunk::End(t) if t.iter().count() == 1));
    assert!(dec.is_done());
    assert!(matches!(dec.decode(b"more"), Ok((0, Chunk::End(t))) if t.is_empty()));
}

#[test]
fn errors_are_sticky() {
    let mut dec = ChunkedDecoder::new(&Config::default());
    assert_eq!(dec.decode(b"z"), Err(Error::InvalidChunkSize));
    assert_eq!(dec.decode(b"5\r\nhello\r\n"), Err(Error::InvalidChunkSize));
}

#[test]
fn one_byte_trickle_of_a_large_trailer_section_finishes() {
    let mut input = b"0\r\n".to_vec();
    for i in 0..200 {
        input.extend_from_slice(format!("T{i}: v\r\n").as_bytes());
    }
    input.extend_from_slice(b"\r\n");
    let (data, trailers, consumed, err) = run(&input, 1);
    assert!(data.is_empty() && err.is_none());
    assert_eq!(trailers.map(|t| t.len()), Some(200));
    assert_eq!(consumed, input.len());
}
