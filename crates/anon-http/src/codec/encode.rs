//! Serialization: responses (status line, cached `Date`, framing, connection handling),
//! chunks, pre-rendered replies, and a small request encoder for clients and tests.
//!
//! Every encoder appends to a caller-owned `Vec<u8>`: several pipelined responses go
//! into one buffer and leave in one write. With a reused buffer that already has the
//! capacity, encoding does not allocate.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{header, HeaderMap, StatusCode};

use super::chars::{scan_class, scan_to_ctl, TOKEN};
use super::head::Version;

/// The overload reply: written as is, without allocating, when a queue is full.
/// `503`, `Retry-After: 1`, `Connection: close`, empty body. It carries no `Date`
/// (optional for 5xx, RFC 9110 §6.6.1) so that it stays a constant.
pub const OVERLOAD_REPLY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// The interim `100 Continue` answer to `Expect: 100-continue`.
pub const CONTINUE_REPLY: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Length of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
const DATE_LEN: usize = 29;

/// The `Date` value, rendered at most once per second. Each worker owns one and calls
/// [`refresh`](DateCache::refresh) with the current time before encoding.
#[derive(Debug, Clone)]
pub struct DateCache {
    secs: u64,
    value: [u8; DATE_LEN],
}

impl DateCache {
    /// A cache rendered for `now`.
    pub fn new(now: SystemTime) -> Self {
        let mut c = DateCache {
            secs: u64::MAX,
            value: [b' '; DATE_LEN],
        };
        c.refresh(now);
        c
    }

    /// Re-renders the value if `now` is in another second than the cached one; returns
    /// whether it did. Times before 1970 render as 1970-01-01, times after 9999 as the
    /// last second of 9999 (the IMF-fixdate range).
    pub fn refresh(&mut self, now: SystemTime) -> bool {
        const LAST: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .min(LAST);
        if secs == self.secs {
            return false;
        }
        self.secs = secs;
        let date = httpdate::HttpDate::from(UNIX_EPOCH + std::time::Duration::from_secs(secs));
        let mut out: &mut [u8] = &mut self.value;
        // An IMF-fixdate is 29 bytes for every year in 1970..=9999, so this cannot fail;
        // if it ever did, the previous bytes would stay.
        let _ = write!(out, "{date}");
        true
    }

    /// The rendered value (29 bytes, no CRLF).
    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

/// How the caller will send the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// Exactly this many bytes.
    Length(u64),
    /// Unknown length: chunks ([`encode_chunk`], then [`encode_last_chunk`]); to an
    /// HTTP/1.0 client this becomes "until close".
    Chunked,
}

/// A response head to encode.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    /// The status.
    pub status: StatusCode,
    /// Header fields to send. `Connection`, `Keep-Alive`, `Content-Length`,
    /// `Transfer-Encoding` and `Date` in it are skipped: the encoder owns framing,
    /// connection handling and the date.
    pub headers: &'a HeaderMap,
    /// How the body will be sent.
    pub body: ResponseBody,
    /// The request's version (the response line always says HTTP/1.1).
    pub request_version: Version,
    /// Whether the caller wants to keep the connection open after this response.
    pub keep_alive: bool,
}

/// How the body of an encoded response must be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body may follow (1xx, 204, 304).
    NoBody,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunks, then the last chunk.
    Chunked,
    /// Raw bytes, then close the connection (unknown length to an HTTP/1.0 client).
    UntilClose,
}

/// What [`encode_response_head`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    /// How the body must be sent.
    pub framing: ResponseFraming,
    /// Whether the connection stays open after the body (the head says so).
    pub keep_alive: bool,
}

/// Appends a response head (status line, `Date`, the fields, framing, `Connection`).
///
/// Connection handling: `keep_alive == false` sends `Connection: close`; an HTTP/1.0
/// client that may keep the connection gets `Connection: keep-alive`; a chunked body
/// for an HTTP/1.0 client becomes [`ResponseFraming::UntilClose`] and closes.
///
/// ```
/// use anon_http::{encode_response_head, DateCache, ResponseBody, ResponseHead, Version};
/// use http::{HeaderMap, StatusCode};
///
/// let date = DateCache::new(std::time::UNIX_EPOCH);
/// let mut out = Vec::new();
/// let head = ResponseHead {
///     status: StatusCode::OK,
///     headers: &HeaderMap::new(),
///     body: ResponseBody::Length(2),
///     request_version: Version::Http11,
///     keep_alive: true,
/// };
/// encode_response_head(&mut out, &head, &date);
/// out.extend_from_slice(b"ok");
/// assert_eq!(
///     out,
///     b"HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok"
/// );
/// ```
pub fn encode_response_head(
    out: &mut Vec<u8>,
    head: &ResponseHead<'_>,
    date: &DateCache,
) -> Encoded {
    let code = head.status.as_u16();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(head.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let informational = head.status.is_informational();
    if !informational {
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(date.value());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in head.headers {
        if name == header::CONNECTION
            || name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::DATE
            || name.as_str() == "keep-alive"
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if informational {
        out.extend_from_slice(b"\r\n");
        return Encoded {
            framing: ResponseFraming::NoBody,
            keep_alive: head.keep_alive,
        };
    }
    let http10 = head.request_version == Version::Http10;
    let mut keep_alive = head.keep_alive;
    let framing = if code == 204 || code == 304 {
        ResponseFraming::NoBody
    } else {
        match head.body {
            ResponseBody::Length(n) => {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                out.extend_from_slice(b"\r\n");
                ResponseFraming::Length(n)
            }
            ResponseBody::Chunked if http10 => {
                keep_alive = false;
                ResponseFraming::UntilClose
            }
            ResponseBody::Chunked => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                ResponseFraming::Chunked
            }
        }
    };
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Encoded {
        framing,
        keep_alive,
    }
}

/// Appends a whole response with a body of known length: the head for
/// `ResponseBody::Length(body.len())`, then `body` unless the status forbids one.
pub fn encode_response(
    out: &mut Vec<u8>,
    head: &ResponseHead<'_>,
    body: &[u8],
    date: &DateCache,
) -> Encoded {
    let head = ResponseHead {
        body: ResponseBody::Length(body.len() as u64),
        ..*head
    };
    let enc = encode_response_head(out, &head, date);
    if enc.framing != ResponseFraming::NoBody {
        out.extend_from_slice(body);
    }
    enc
}

/// Appends one chunk (`hex-size CRLF data CRLF`); nothing for empty `data`, since an
/// empty chunk would end the body.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    push_hex(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk and an empty trailer section (`0 CRLF CRLF`).
pub fn encode_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

fn push_hex(out: &mut Vec<u8>, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut tmp = [0u8; 16];
    let mut i = tmp.len();
    let mut n = n;
    loop {
        i -= 1;
        tmp[i] = HEX[(n & 0xF) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// A request the encoder refused: writing it would let the input change the framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The method is not a token.
    #[error("method is not a token")]
    InvalidMethod,
    /// The target is empty or holds a control byte, a space or a non-ASCII byte.
    #[error("invalid request target")]
    InvalidTarget,
    /// A field name is not a token.
    #[error("field name is not a token")]
    InvalidHeaderName,
    /// A field value holds CR, LF or another control byte than HTAB.
    #[error("control byte in field value")]
    InvalidHeaderValue,
}

/// Appends a request head: `method SP target SP version CRLF`, the fields as given, and
/// the empty line. The caller includes `Host` and the framing fields (`Content-Length`
/// or `Transfer-Encoding: chunked`) in `headers` and then writes the body (for chunked,
/// with [`encode_chunk`] and [`encode_last_chunk`]). For clients and tests.
pub fn encode_request_head(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    version: Version,
    headers: &[(&str, &[u8])],
) -> Result<(), EncodeError> {
    let m = method.as_bytes();
    if m.is_empty() || scan_class(&TOKEN, m, 0) != m.len() {
        return Err(EncodeError::InvalidMethod);
    }
    let t = target.as_bytes();
    if t.is_empty() || !t.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(EncodeError::InvalidTarget);
    }
    for (name, value) in headers {
        let n = name.as_bytes();
        if n.is_empty() || scan_class(&TOKEN, n, 0) != n.len() {
            return Err(EncodeError::InvalidHeaderName);
        }
        let mut i = 0;
        loop {
            i = scan_to_ctl(value, i);
            match value.get(i) {
                None => break,
                Some(b'\t') => i += 1,
                Some(_) => return Err(EncodeError::InvalidHeaderValue),
            }
        }
    }
    out.extend_from_slice(m);
    out.push(b' ');
    out.extend_from_slice(t);
    out.push(b' ');
    out.extend_from_slice(version.as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_sizes() {
        for (n, s) in [
            (0u64, "0"),
            (1, "1"),
            (0xabc, "abc"),
            (u64::MAX, "ffffffffffffffff"),
        ] {
            let mut v = Vec::new();
            push_hex(&mut v, n);
            assert_eq!(v, s.as_bytes());
        }
    }

    #[test]
    fn date_renders_once_per_second() {
        let t0 = UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        let mut d = DateCache::new(t0);
        assert_eq!(d.value(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(!d.refresh(t0 + std::time::Duration::from_millis(999)));
        assert!(d.refresh(t0 + std::time::Duration::from_secs(1)));
        assert_eq!(d.value(), b"Sun, 06 Nov 1994 08:49:38 GMT");
        let far = UNIX_EPOCH + std::time::Duration::from_secs(400_000_000_000);
        assert!(d.refresh(far));
        assert_eq!(d.value(), b"Fri, 31 Dec 9999 23:59:59 GMT");
        assert!(d.refresh(UNIX_EPOCH - std::time::Duration::from_secs(5)));
        assert_eq!(d.value(), b"Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
