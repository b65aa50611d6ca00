//! The message-stream decoder: heads, bodies and message ends of a pipelined connection,
//! from bytes split anywhere.

use super::chunked::{Chunk, ChunkedDecoder, Trailers};
use super::head::{parse_head, Framing, HeaderSlot, Request};
use super::{Config, Error, Status};

/// What the decoder found at the start of the buffer.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A request head; its body (if any) follows as [`Event::Body`] events.
    Head(Request<'a>),
    /// A piece of the current request's body (never empty; already de-chunked).
    Body(&'a [u8]),
    /// The current request is complete; with its trailers if it was chunked.
    End(Trailers<'a>),
    /// More bytes are needed.
    Partial,
    /// The last request did not allow the connection to persist (`Connection: close`,
    /// or HTTP/1.0 without keep-alive): nothing more is read from this connection.
    Closed,
}

/// The answer of [`MessageDecoder::decode`]: how many bytes to drop from the front of
/// the buffer, and what they were.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    /// Bytes consumed from the start of the buffer given.
    pub consumed: usize,
    /// What was decoded.
    pub event: Event<'a>,
}

#[derive(Debug, Clone)]
enum State {
    Head,
    Body(u64),
    /// The body is chunked: `MessageDecoder::chunked` decodes it.
    Chunked,
    Closed,
    Failed(Error),
}

/// Sans-IO decoder of a request stream (one connection, pipelining included).
///
/// Call [`decode`](MessageDecoder::decode) with the bytes not yet consumed (the driver
/// keeps them and appends what it reads), drop `consumed` bytes from the front, and call
/// again until [`Event::Partial`] (read more) or [`Event::Closed`]. Each request yields
/// `Head`, zero or more `Body`, then `End`. An error is final: answer with
/// [`Error::reply`] and close.
///
/// A head is re-parsed only when a new line end arrived or a limit was reached, so input
/// trickling in a byte at a time costs linear work; the events do not depend on how the
/// bytes were split (apart from how the body is cut into `Body` pieces).
///
/// ```
/// use anon_http::{Config, Event, MessageDecoder};
///
/// let mut dec = MessageDecoder::new(Config::default());
/// let mut buf: Vec<u8> = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
/// let mut targets = Vec::new();
/// loop {
///     let d = dec.decode(&buf)?;
///     let consumed = d.consumed;
///     match d.event {
///         Event::Head(req) => targets.push(req.target().to_string()),
///         Event::Partial | Event::Closed => break,
///         Event::Body(_) | Event::End(_) => {}
///     }
///     buf.drain(..consumed);
/// }
/// assert_eq!(targets, ["/a", "/b"]);
/// # Ok::<(), anon_http::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MessageDecoder {
    config: Config,
    slots: Box<[HeaderSlot]>,
    state: State,
    /// Reused for every chunked body (reset at each head), so that the state stays small.
    chunked: ChunkedDecoder,
    keep_alive: bool,
    /// Head bytes already seen in a partial parse: a re-parse waits for a new LF here...
    scanned: usize,
    /// ...or for the buffer to reach this length (a window limit).
    limit_at: usize,
}

impl MessageDecoder {
    /// A decoder at the start of a connection. Allocates the header slots
    /// (`config.limits.max_headers`, at most 4096) once.
    pub fn new(config: Config) -> Self {
        let n = config.limits.max_headers.min(4096);
        MessageDecoder {
            config,
            slots: vec![HeaderSlot::EMPTY; n].into_boxed_slice(),
            state: State::Head,
            chunked: ChunkedDecoder::new(&config),
            keep_alive: true,
            scanned: 0,
            limit_at: 0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `true` between requests with no byte of the next head seen: the place for an idle
    /// timeout rather than a request-head timeout.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head) && self.scanned == 0
    }

    /// Decodes from the start of `buf`, which must begin with the bytes not consumed by
    /// earlier calls.
    pub fn decode<'a>(&'a mut self, buf: &'a [u8]) -> Result<Decoded<'a>, Error> {
        let Self {
            config,
            slots,
            state,
            chunked,
            keep_alive,
            scanned,
            limit_at,
        } = self;
        let done = |consumed, event| Ok(Decoded { consumed, event });
        match state {
            State::Failed(e) => Err(*e),
            State::Closed => done(0, Event::Closed),
            State::Head => {
                let fresh = buf.get(*scanned..).unwrap_or_default();
                if buf.len() < *limit_at && memchr::memchr(b'\n', fresh).is_none() {
                    *scanned = buf.len();
                    return done(0, Event::Partial);
                }
                match parse_head(buf, config, slots, limit_at) {
                    Err(e) => {
                        *state = State::Failed(e);
                        Err(e)
                    }
                    Ok(Status::Partial) => {
                        *scanned = buf.len();
                        done(0, Event::Partial)
                    }
                    Ok(Status::Complete(req)) => {
                        *scanned = 0;
                        *limit_at = 0;
                        *keep_alive = req.keep_alive();
                        *state = match req.framing() {
                            Framing::Length(n) => State::Body(n),
                            Framing::Chunked => {
                                chunked.reset();
                                State::Chunked
                            }
                        };
                        done(req.head_len(), Event::Head(req))
                    }
                }
            }
            State::Body(0) => {
                *state = if *keep_alive {
                    State::Head
                } else {
                    State::Closed
                };
                done(0, Event::End(Trailers::EMPTY))
            }
            State::Body(rem) => {
                if buf.is_empty() {
                    return done(0, Event::Partial);
                }
                let n = (*rem).min(buf.len() as u64) as usize;
                *rem -= n as u64;
                done(n, Event::Body(&buf[..n]))
            }
            State::Chunked => match chunked.decode(buf) {
                Err(e) => {
                    *state = State::Failed(e);
                    Err(e)
                }
                Ok((n, Chunk::Data(d))) => done(n, Event::Body(d)),
                Ok((n, Chunk::Partial)) => done(n, Event::Partial),
                Ok((n, Chunk::End(t))) => {
                    *state = if *keep_alive {
                        State::Head
                    } else {
                        State::Closed
                    };
                    done(n, Event::End(t))
                }
            },
        }
    }
}
