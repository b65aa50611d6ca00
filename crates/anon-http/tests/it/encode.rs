//! Response and request encoding.

use super::support::decode;
use anon_http::{
    encode_chunk, encode_last_chunk, encode_request_head, encode_response, encode_response_head,
    Config, DateCache, EncodeError, Encoded, Error, ResponseBody, ResponseFraming, ResponseHead,
    Version, CONTINUE_REPLY, OVERLOAD_REPLY,
};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use std::time::{Duration, UNIX_EPOCH};

fn date() -> DateCache {
    DateCache::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

const DATE: &str = "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n";

fn head(
    status: u16,
    headers: &HeaderMap,
    body: ResponseBody,
    v: Version,
    ka: bool,
) -> ResponseHead<'_> {
    ResponseHead {
        status: StatusCode::from_u16(status).expect("valid status"),
        headers,
        body,
        request_version: v,
        keep_alive: ka,
    }
}

fn text(v: &[u8]) -> &str {
    std::str::from_utf8(v).expect("ASCII")
}

#[test]
fn keep_alive_http11_has_no_connection_field() {
    let mut out = Vec::new();
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let enc = encode_response(
        &mut out,
        &head(200, &h, ResponseBody::Length(0), Version::Http11, true),
        b"Hello",
        &date(),
    );
    assert_eq!(
        enc,
        Encoded {
            framing: ResponseFraming::Length(5),
            keep_alive: true
        }
    );
    assert_eq!(
        text(&out),
        format!(
            "HTTP/1.1 200 OK\r\n{DATE}content-type: text/plain\r\nContent-Length: 5\r\n\r\nHello"
        )
    );
}

#[test]
fn close_is_announced() {
    let mut out = Vec::new();
    let enc = encode_response_head(
        &mut out,
        &head(
            404,
            &HeaderMap::new(),
            ResponseBody::Length(0),
            Version::Http11,
            false,
        ),
        &date(),
    );
    assert!(!enc.keep_alive);
    assert_eq!(
        text(&out),
        format!("HTTP/1.1 404 Not Found\r\n{DATE}Content-Length: 0\r\nConnection: close\r\n\r\n")
    );
}

#[test]
fn http10_keep_alive_is_announced_and_chunked_becomes_until_close() {
    let mut out = Vec::new();
    let enc = encode_response_head(
        &mut out,
        &head(
            200,
            &HeaderMap::new(),
            ResponseBody::Length(2),
            Version::Http10,
            true,
        ),
        &date(),
    );
    assert_eq!(
        enc,
        Encoded {
            framing: ResponseFraming::Length(2),
            keep_alive: true
        }
    );
    assert!(text(&out).ends_with("Content-Length: 2\r\nConnection: keep-alive\r\n\r\n"));

    out.clear();
    let enc = encode_response_head(
        &mut out,
        &head(
            200,
            &HeaderMap::new(),
            ResponseBody::Chunked,
            Version::Http10,
            true,
        ),
        &date(),
    );
    assert_eq!(
        enc,
        Encoded {
            framing: ResponseFraming::UntilClose,
            keep_alive: false
        }
    );
    assert_eq!(
        text(&out),
        format!("HTTP/1.1 200 OK\r\n{DATE}Connection: close\r\n\r\n")
    );
}

#[test]
fn chunked_response_body() {
    let mut out = Vec::new();
    let enc = encode_response_head(
        &mut out,
        &head(
            200,
            &HeaderMap::new(),
            ResponseBody::Chunked,
            Version::Http11,
            true,
        ),
        &date(),
    );
    assert_eq!(enc.framing, ResponseFraming::Chunked);
    encode_chunk(&mut out, b"hello world, this is chunk one");
    encode_chunk(&mut out, b"");
    encode_chunk(&mut out, b"!");
    encode_last_chunk(&mut out);
    assert_eq!(
        text(&out),
        format!("HTTP/1.1 200 OK\r\n{DATE}Transfer-Encoding: chunked\r\n\r\n1e\r\nhello world, this is chunk one\r\n1\r\n!\r\n0\r\n\r\n")
    );
}

#[test]
fn no_body_statuses_get_no_framing() {
    for (status, reason) in [(204, "No Content"), (304, "Not Modified")] {
        let mut out = Vec::new();
        let enc = encode_response(
            &mut out,
            &head(
                status,
                &HeaderMap::new(),
                ResponseBody::Length(0),
                Version::Http11,
                true,
            ),
            b"ignored",
            &date(),
        );
        assert_eq!(enc.framing, ResponseFraming::NoBody);
        assert_eq!(
            text(&out),
            format!("HTTP/1.1 {status} {reason}\r\n{DATE}\r\n")
        );
    }
    let mut out = Vec::new();
    encode_response_head(
        &mut out,
        &head(
            100,
            &HeaderMap::new(),
            ResponseBody::Length(0),
            Version::Http11,
            true,
        ),
        &date(),
    );
    assert_eq!(out, CONTINUE_REPLY);
}

#[test]
fn framing_fields_from_the_caller_are_dropped() {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
    h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::DATE, HeaderValue::from_static("yesterday"));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert(header::SERVER, HeaderValue::from_static("anon"));
    let mut out = Vec::new();
    encode_response(
        &mut out,
        &head(200, &h, ResponseBody::Length(0), Version::Http11, true),
        b"ok",
        &date(),
    );
    assert_eq!(
        text(&out),
        format!("HTTP/1.1 200 OK\r\n{DATE}server: anon\r\nContent-Length: 2\r\n\r\nok")
    );
}

#[test]
fn pipelined_responses_share_one_buffer_without_reallocating() {
    let d = date();
    let mut out = Vec::with_capacity(4096);
    let cap = out.capacity();
    let h = HeaderMap::new();
    for i in 0..16 {
        encode_response(
            &mut out,
            &head(200, &h, ResponseBody::Length(0), Version::Http11, true),
            format!("r{i:02}").as_bytes(),
            &d,
        );
    }
    assert_eq!(
        out.capacity(),
        cap,
        "encoding into a buffer with room must not reallocate"
    );
    let one = format!("HTTP/1.1 200 OK\r\n{DATE}Content-Length: 3\r\n\r\nr00");
    assert_eq!(out.len(), one.len() * 16);
    assert!(text(&out).starts_with(&one));
    assert!(text(&out).ends_with("r15"));
}

#[test]
fn overload_reply_is_a_complete_503() {
    let s = text(OVERLOAD_REPLY);
    assert!(s.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
    assert!(s.contains("\r\nRetry-After: 1\r\n"));
    assert!(s.contains("\r\nConnection: close\r\n"));
    assert!(s.ends_with("\r\nContent-Length: 0\r\n\r\n"));
}

#[test]
fn request_encoder_round_trips_and_refuses_injection() {
    let mut out = Vec::new();
    encode_request_head(
        &mut out,
        "POST",
        "/p?q",
        Version::Http11,
        &[("Host", b"h"), ("Content-Length", b"2")],
    )
    .expect("valid");
    out.extend_from_slice(b"hi");
    let got = decode(&Config::default(), &out, &[]);
    assert_eq!(got.msgs.len(), 1);
    assert_eq!(got.msgs[0].body, b"hi");

    let mut out = Vec::new();
    assert_eq!(
        encode_request_head(&mut out, "GE T", "/", Version::Http11, &[]),
        Err(EncodeError::InvalidMethod)
    );
    assert_eq!(
        encode_request_head(&mut out, "GET", "/a b", Version::Http11, &[]),
        Err(EncodeError::InvalidTarget)
    );
    assert_eq!(
        encode_request_head(&mut out, "GET", "/", Version::Http11, &[("X y", b"v")]),
        Err(EncodeError::InvalidHeaderName)
    );
    assert_eq!(
        encode_request_head(
            &mut out,
            "GET",
            "/",
            Version::Http11,
            &[("X", b"v\r\nInjected: 1")]
        ),
        Err(EncodeError::InvalidHeaderValue)
    );
    assert!(out.is_empty(), "nothing written on refusal");
}

#[test]
fn error_replies_parse_as_responses() {
    for e in [
        Error::InvalidMethod,
        Error::PayloadTooLarge,
        Error::UnsupportedVersion,
    ] {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut resp = httparse::Response::new(&mut headers);
        let n = resp.parse(e.reply()).expect("well-formed");
        assert_eq!(n, httparse::Status::Complete(e.reply().len()));
        assert_eq!(resp.code, Some(e.status()));
    }
}
