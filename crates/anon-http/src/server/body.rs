//! Request bodies (a streaming [`Body`] the handler reads) and response bodies
//! ([`Payload`]).

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};

use super::conn::Conn;

/// The body of a request, read as it arrives from the connection (`std::io::Read`).
///
/// Reads park the handler's fiber while the client is sending; each read waits at most
/// [`ServerConfig::body_read_timeout`](super::ServerConfig::body_read_timeout). The first
/// read of a request with `Expect: 100-continue` sends the interim `100 Continue`, so a
/// handler that answers without reading never makes the client upload. What the handler
/// leaves unread is discarded by the server (up to
/// [`ServerConfig::drain_limit`](super::ServerConfig::drain_limit), else the connection
/// closes after the response). The size is bounded by the codec's `Limits::max_body`.
///
/// A framing error in the body (bad chunk, body over the limit), a timeout or a
/// disconnect is an `io::Error` here; the server then answers with the matching status
/// (400, 408, 413...) whatever the handler returns, and closes.
pub struct Body<'a> {
    conn: Option<&'a mut Conn>,
    length: Option<u64>,
}

impl<'a> Body<'a> {
    pub(crate) fn new(conn: &'a mut Conn, length: Option<u64>) -> Body<'a> {
        Body {
            conn: Some(conn),
            length,
        }
    }

    /// A body with no bytes (for calling a handler directly, e.g. in tests).
    pub fn empty() -> Body<'static> {
        Body {
            conn: None,
            length: Some(0),
        }
    }

    /// The length announced by `Content-Length` (`Some(0)` without a body), `None` for
    /// a chunked body.
    pub fn content_length(&self) -> Option<u64> {
        self.length
    }

    /// Reads the whole body into a `Vec` (bounded by the codec's `max_body`).
    pub fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let cap = self.length.unwrap_or(0).min(64 * 1024) as usize;
        let mut v = Vec::with_capacity(cap);
        self.read_to_end(&mut v)?;
        Ok(v)
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.conn.as_deref_mut() {
            Some(c) => c.read_body(buf),
            None => Ok(0),
        }
    }
}

impl fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("content_length", &self.length)
            .finish_non_exhaustive()
    }
}

/// A response body.
///
/// `Bytes` is sent with `Content-Length` (a `&'static` body is never copied before the
/// write); `Stream` is read and sent as it comes: with `Content-Length` when `len` is
/// known (exactly `len` bytes are sent; a reader that ends early breaks the framing, so
/// the connection closes), else chunked (to an HTTP/1.0 client: until close). A panic or
/// an error in a stream's reader closes the connection.
///
/// ```
/// use anon_http::server::Payload;
///
/// let p: Payload = "hello".into();
/// assert_eq!(p.len(), Some(5));
/// let s = Payload::stream(std::io::repeat(b'x').take(3), None); // chunked
/// assert_eq!(s.len(), None);
/// # use std::io::Read;
/// ```
pub enum Payload {
    /// A body held in memory.
    Bytes(Cow<'static, [u8]>),
    /// A body read as it is sent.
    Stream {
        /// The reader.
        reader: Box<dyn Read + Send>,
        /// Its exact length if known (sent as `Content-Length`), else chunked.
        len: Option<u64>,
    },
}

impl Payload {
    /// No body.
    pub const EMPTY: Payload = Payload::Bytes(Cow::Borrowed(b""));

    /// A streamed body.
    pub fn stream(reader: impl Read + Send + 'static, len: Option<u64>) -> Payload {
        Payload::Stream {
            reader: Box::new(reader),
            len,
        }
    }

    /// The length if known.
    pub fn len(&self) -> Option<u64> {
        match self {
            Payload::Bytes(b) => Some(b.len() as u64),
            Payload::Stream { len, .. } => *len,
        }
    }

    /// `true` for an empty in-memory body.
    pub fn is_empty(&self) -> bool {
        matches!(self, Payload::Bytes(b) if b.is_empty())
    }
}

impl Default for Payload {
    fn default() -> Self {
        Payload::EMPTY
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Bytes(b) => f.debug_tuple("Bytes").field(&b.len()).finish(),
            Payload::Stream { len, .. } => f.debug_struct("Stream").field("len", len).finish(),
        }
    }
}

impl From<()> for Payload {
    fn from(_: ()) -> Payload {
        Payload::EMPTY
    }
}

impl From<&'static str> for Payload {
    fn from(s: &'static str) -> Payload {
        Payload::Bytes(Cow::Borrowed(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Payload {
    fn from(s: &'static [u8]) -> Payload {
        Payload::Bytes(Cow::Borrowed(s))
    }
}

impl From<String> for Payload {
    fn from(s: String) -> Payload {
        Payload::Bytes(Cow::Owned(s.into_bytes()))
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Payload {
        Payload::Bytes(Cow::Owned(v))
    }
}

impl From<Cow<'static, [u8]>> for Payload {
    fn from(c: Cow<'static, [u8]>) -> Payload {
        Payload::Bytes(c)
    }
}
