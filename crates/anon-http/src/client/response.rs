//! Reading one response from a connection: head (tokenized by `httparse`), framing
//! decision (strict about conflicting lengths), body.

use std::io::{self, Read};

use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};

use super::ClientError;
use crate::{Chunk, ChunkedDecoder, Config, Limits};

/// Most header fields accepted in a response.
const MAX_HEADERS: usize = 100;

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFraming {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A response read, and whether the connection may carry another request.
pub(crate) struct Received {
    pub(crate) response: Response<Vec<u8>>,
    pub(crate) reusable: bool,
}

/// Why a read failed before any response byte arrived on a reused connection: the
/// server had closed it while it sat in the pool.
pub(crate) enum ReadError {
    /// Nothing was received (end of stream or reset): the request may be redone.
    NothingReceived(io::Error),
    /// Anything else.
    Failed(ClientError),
}

impl From<ClientError> for ReadError {
    fn from(e: ClientError) -> ReadError {
        ReadError::Failed(e)
    }
}

/// Reads one response to a request with method `head_request` (HEAD: no body).
pub(crate) fn read_response(
    mut stream: impl Read,
    buf: &mut Vec<u8>,
    head_request: bool,
    max_head: usize,
    max_body: u64,
) -> Result<Received, ReadError> {
    buf.clear();
    let mut tmp = [0u8; 4096];
    loop {
        // Parse what is buffered; skip interim (1xx) responses.
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut r = httparse::Response::new(&mut headers);
            match r.parse(buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let code = r.code.unwrap_or(0);
                    if (100..200).contains(&code) && code != 101 {
                        buf.drain(..n);
                        continue;
                    }
                    let (response, framing, reusable) = build(&r, head_request)?;
                    buf.drain(..n);
                    return read_body(stream, buf, response, framing, reusable, max_body)
                        .map_err(ReadError::Failed);
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => return Err(ClientError::Protocol("malformed response head").into()),
            }
            if buf.len() > max_head {
                return Err(ClientError::TooLarge.into());
            }
        }
        let n = match stream.read(&mut tmp) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if buf.is_empty() && e.kind() == io::ErrorKind::ConnectionReset => {
                return Err(ReadError::NothingReceived(e));
            }
            Err(e) => return Err(ClientError::Io(e).into()),
        };
        if n == 0 {
            let e = io::Error::from(io::ErrorKind::UnexpectedEof);
            return Err(if buf.is_empty() {
                ReadError::NothingReceived(e)
            } else {
                ClientError::Protocol("connection closed inside a response head").into()
            });
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// The response without its body, the framing, and whether the connection persists.
fn build(
    r: &httparse::Response<'_, '_>,
    head_request: bool,
) -> Result<(Response<Vec<u8>>, BodyFraming, bool), ClientError> {
    let code = r.code.unwrap_or(0);
    let status =
        StatusCode::from_u16(code).map_err(|_| ClientError::Protocol("invalid status code"))?;
    let http11 = r.version == Some(1);
    let mut response = Response::new(Vec::new());
    *response.status_mut() = status;
    *response.version_mut() = if http11 {
        http::Version::HTTP_11
    } else {
        http::Version::HTTP_10
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut other_coding = false;
    let mut close = !http11;
    let headers = response.headers_mut();
    for h in r.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| ClientError::Protocol("invalid header name"))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| ClientError::Protocol("invalid header value"))?;
        if name == http::header::CONTENT_LENGTH {
            let n = std::str::from_utf8(h.value)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(ClientError::Protocol("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(ClientError::Protocol("conflicting Content-Length"));
            }
            length = Some(n);
        } else if name == http::header::TRANSFER_ENCODING {
            for coding in h.value.split(|&b| b == b',') {
                let coding = coding.trim_ascii();
                if coding.is_empty() {
                    continue;
                }
                if chunked {
                    // Anything after chunked: chunked is no longer the final coding.
                    other_coding = true;
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked = true;
                } else {
                    other_coding = true;
                }
            }
        } else if name == http::header::CONNECTION {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    close = false;
                }
            }
        }
        headers.append(name, value);
    }
    let te = chunked || other_coding;
    if te && length.is_some() {
        return Err(ClientError::Protocol(
            "Content-Length together with Transfer-Encoding",
        ));
    }
    let no_body = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        BodyFraming::None
    } else if chunked && !other_coding {
        BodyFraming::Chunked
    } else if te {
        BodyFraming::UntilClose
    } else if let Some(n) = length {
        BodyFraming::Length(n)
    } else {
        BodyFraming::UntilClose
    };
    let reusable = !close && framing != BodyFraming::UntilClose;
    Ok((response, framing, reusable))
}

fn read_body(
    mut stream: impl Read,
    buf: &mut Vec<u8>,
    mut response: Response<Vec<u8>>,
    framing: BodyFraming,
    mut reusable: bool,
    max_body: u64,
) -> Result<Received, ClientError> {
    let mut tmp = [0u8; 8192];
    let body = response.body_mut();
    match framing {
        BodyFraming::None => {}
        BodyFraming::Length(n) => {
            if n > max_body {
                return Err(ClientError::TooLarge);
            }
            let n = n as usize;
            body.reserve(n.min(1 << 20));
            let take = buf.len().min(n);
            body.extend_from_slice(&buf[..take]);
            buf.drain(..take);
            while body.len() < n {
                let want = (n - body.len()).min(tmp.len());
                let got = read_some(&mut stream, &mut tmp[..want])?;
                if got == 0 {
                    return Err(ClientError::Protocol("connection closed inside a body"));
                }
                body.extend_from_slice(&tmp[..got]);
            }
        }
        BodyFraming::Chunked => {
            let config = Config {
                limits: Limits {
                    max_body,
                    ..Limits::DEFAULT
                },
                ..Config::default()
            };
            let mut dec = ChunkedDecoder::new(&config);
            loop {
                let (used, chunk) = dec.decode(buf).map_err(|e| {
                    if e == crate::Error::PayloadTooLarge {
                        ClientError::TooLarge
                    } else {
                        ClientError::Protocol("malformed chunked body")
                    }
                })?;
                let done = match chunk {
                    Chunk::Data(d) => {
                        body.extend_from_slice(d);
                        false
                    }
                    Chunk::End(_) => true,
                    Chunk::Partial => {
                        buf.drain(..used);
                        if buf.len() > 64 * 1024 {
                            return Err(ClientError::Protocol("chunk line too long"));
                        }
                        let got = read_some(&mut stream, &mut tmp)?;
                        if got == 0 {
                            return Err(ClientError::Protocol("connection closed inside a body"));
                        }
                        buf.extend_from_slice(&tmp[..got]);
                        continue;
                    }
                };
                buf.drain(..used);
                if done {
                    break;
                }
            }
        }
        BodyFraming::UntilClose => {
            body.extend_from_slice(buf);
            buf.clear();
            loop {
                if body.len() as u64 > max_body {
                    return Err(ClientError::TooLarge);
                }
                let got = read_some(&mut stream, &mut tmp)?;
                if got == 0 {
                    break;
                }
                body.extend_from_slice(&tmp[..got]);
            }
        }
    }
    // Bytes after the response that nobody asked for: do not trust this connection.
    if !buf.is_empty() {
        reusable = false;
    }
    Ok(Received { response, reusable })
}

fn read_some(stream: &mut impl Read, buf: &mut [u8]) -> Result<usize, ClientError> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map_err(ClientError::Io),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &[u8], head: bool) -> Result<Received, ClientError> {
        let mut buf = Vec::new();
        read_response(raw, &mut buf, head, 64 * 1024, 1024).map_err(|e| match e {
            ReadError::Failed(e) => e,
            ReadError::NothingReceived(e) => ClientError::Io(e),
        })
    }

    #[test]
    fn length_chunked_and_close_delimited_bodies() {
        let r = read(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", false).unwrap();
        assert_eq!(r.response.body(), b"abc");
        assert!(r.reusable);
        let r = read(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(r.response.body(), b"abc");
        assert!(r.reusable);
        let r = read(b"HTTP/1.0 200 OK\r\n\r\nuntil close", false).unwrap();
        assert_eq!(r.response.body(), b"until close");
        assert!(!r.reusable);
        let r = read(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).unwrap();
        assert!(r.response.body().is_empty() && r.reusable);
    }

    #[test]
    fn smuggling_shapes_and_oversize_are_refused() {
        assert!(matches!(
            read(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                false
            ),
            Err(ClientError::Protocol(_))
        ));
        assert!(matches!(
            read(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            ),
            Err(ClientError::Protocol(_))
        ));
        assert!(matches!(
            read(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", false),
            Err(ClientError::TooLarge)
        ));
    }

    #[test]
    fn connection_close_and_trailing_bytes_stop_reuse() {
        let r = read(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
            false,
        )
        .unwrap();
        assert!(!r.reusable);
        let r = read(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA", false).unwrap();
        assert!(!r.reusable);
    }
}
