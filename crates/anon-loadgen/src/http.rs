//! The HTTP/1.1 side: request bytes, and a reader for responses framed by
//! Content-Length (heads parsed by `httparse`).

/// Most header lines a response head may have.
pub const MAX_HEADERS: usize = 32;

/// `GET path HTTP/1.1` with a `Host` header; `close` adds `Connection: close`.
pub fn request_bytes(path: &str, host: &str, close: bool) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    if close {
        r.push_str("Connection: close\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// A complete response at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Bytes taken by head and body.
    pub len: usize,
    /// The server will close the connection (`Connection: close`, or HTTP/1.0 without
    /// keep-alive).
    pub close: bool,
}

/// A response the reader cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The head is not valid HTTP/1.x.
    #[error("invalid response head: {0}")]
    Head(#[from] httparse::Error),
    /// Neither Content-Length nor a status without body (1xx, 204, 304).
    #[error("response without Content-Length (only Content-Length framing is supported)")]
    NoLength,
    /// `Transfer-Encoding` is not supported by this reader.
    #[error("Transfer-Encoding responses are not supported")]
    TransferEncoding,
    /// A Content-Length that is not a decimal number, or several that differ.
    #[error("invalid Content-Length")]
    BadLength,
    /// Head plus body exceed the configured limit.
    #[error("response larger than the limit")]
    TooLarge,
}

/// Parses the response at the start of `buf`: `Ok(None)` means more bytes are needed.
/// Responses larger than `max` bytes are refused, so the caller's buffer stays bounded.
pub fn parse_response(buf: &[u8], max: usize) -> Result<Option<Response>, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => {
            return if buf.len() >= max {
                Err(ResponseError::TooLarge)
            } else {
                Ok(None)
            };
        }
    };
    let status = resp.code.unwrap_or(0);
    let mut length: Option<usize> = None;
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or(ResponseError::BadLength)?;
            if length.is_some_and(|l| l != v) {
                return Err(ResponseError::BadLength);
            }
            length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ResponseError::TransferEncoding);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let t = token.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") && resp.version == Some(0) {
                    close = false;
                }
            }
        }
    }
    let body = match (status, length) {
        (100..=199 | 204 | 304, _) => 0,
        (_, Some(l)) => l,
        (_, None) => return Err(ResponseError::NoLength),
    };
    let total = head_len.checked_add(body).ok_or(ResponseError::TooLarge)?;
    if total > max {
        return Err(ResponseError::TooLarge);
    }
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(Response {
        status,
        len: total,
        close,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";

    #[test]
    fn complete_partial_and_split_anywhere() {
        assert_eq!(
            parse_response(OK, 4096),
            Ok(Some(Response {
                status: 200,
                len: OK.len(),
                close: false
            }))
        );
        for cut in 0..OK.len() {
            assert_eq!(parse_response(&OK[..cut], 4096), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn close_503_and_errors() {
        let r = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\ncontent-length: 0\r\n\r\n";
        let p = parse_response(r, 4096).unwrap().unwrap();
        assert_eq!((p.status, p.close, p.len), (503, true, r.len()));
        let r10 = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_response(r10, 4096).unwrap().unwrap().close);
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\n\r\n", 4096),
            Err(ResponseError::NoLength)
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 204 No Content\r\n\r\n", 4096)
                .unwrap()
                .unwrap()
                .len,
            27
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                4096
            ),
            Err(ResponseError::TransferEncoding)
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                4096
            ),
            Err(ResponseError::BadLength)
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 4096),
            Err(ResponseError::BadLength)
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 50),
            Err(ResponseError::TooLarge)
        );
        assert!(matches!(
            parse_response(b"NOPE\r\n\r\n", 4096),
            Err(ResponseError::Head(_))
        ));
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(100, b'a');
        assert_eq!(parse_response(&long, 64), Err(ResponseError::TooLarge));
    }

    #[test]
    fn request_shape() {
        assert_eq!(
            request_bytes("/x?a=1", "h", true),
            b"GET /x?a=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".to_vec()
        );
    }
}
