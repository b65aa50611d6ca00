//! `parse_request` used directly: partial input, header slots, accessors.

use anon_http::{parse_request, Config, Error, Framing, HeaderSlot, Status, TargetForm, Version};

const BROWSER: &[u8] = b"GET /index.html?q=1 HTTP/1.1\r\nHost: www.example.org\r\n\
Connection: keep-alive\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n\
Accept: text/html,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate, br\r\n\
Cookie: a=b; c=d\r\n\r\n";

/// `Ok(true)` for a complete head, `Ok(false)` for partial.
fn complete(r: Result<Status<anon_http::Request<'_>>, Error>) -> Result<bool, Error> {
    r.map(|s| s.is_complete())
}

#[test]
fn every_strict_prefix_is_partial() {
    let config = Config::default();
    for cut in 0..BROWSER.len() {
        let mut slots = [HeaderSlot::EMPTY; 16];
        let r = parse_request(&BROWSER[..cut], &config, &mut slots);
        assert_eq!(
            r.map(|s| s.is_complete()),
            Ok(false),
            "prefix of {cut} bytes"
        );
    }
}

#[test]
fn accessors_report_the_parsed_head() {
    let mut buf = BROWSER.to_vec();
    buf.extend_from_slice(b"NEXT");
    let mut slots = [HeaderSlot::EMPTY; 16];
    let Ok(Status::Complete(req)) = parse_request(&buf, &Config::default(), &mut slots) else {
        panic!("complete head expected");
    };
    assert_eq!(req.method(), "GET");
    assert_eq!(req.target(), "/index.html?q=1");
    assert_eq!(req.target_form(), TargetForm::Origin);
    assert_eq!(req.version(), Version::Http11);
    assert_eq!(req.head_len(), BROWSER.len());
    assert_eq!(req.framing(), Framing::Length(0));
    assert!(req.keep_alive());
    assert!(!req.expect_continue());
    assert_eq!(req.host(), Some(&b"www.example.org"[..]));
    assert_eq!(req.headers().len(), 6);
    assert_eq!(req.header("cookie"), Some(&b"a=b; c=d"[..]));
    assert_eq!(req.header("COOKIE"), Some(&b"a=b; c=d"[..]));
    assert_eq!(req.header("missing"), None);
    let names: Vec<&str> = req.headers().map(|h| h.name()).collect();
    assert_eq!(
        names,
        [
            "Host",
            "Connection",
            "User-Agent",
            "Accept",
            "Accept-Encoding",
            "Cookie"
        ]
    );
}

#[test]
fn fewer_slots_than_fields_is_too_many_headers() {
    let mut slots = [HeaderSlot::EMPTY; 5];
    assert_eq!(
        complete(parse_request(BROWSER, &Config::default(), &mut slots)),
        Err(Error::TooManyHeaders)
    );
}

#[test]
fn target_forms_are_classified() {
    type Case<'a> = (&'a [u8], TargetForm, Option<&'a [u8]>);
    let cases: [Case<'_>; 4] = [
        (
            b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n",
            TargetForm::Origin,
            Some(b"h"),
        ),
        (
            b"GET http://a.b/x HTTP/1.1\r\nHost: h\r\n\r\n",
            TargetForm::Absolute,
            Some(b"a.b"),
        ),
        (
            b"CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n",
            TargetForm::Authority,
            Some(b"a.b:443"),
        ),
        (
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            TargetForm::Asterisk,
            Some(b"h"),
        ),
    ];
    for (input, form, host) in cases {
        let mut slots = [HeaderSlot::EMPTY; 4];
        let Ok(Status::Complete(req)) = parse_request(input, &Config::default(), &mut slots) else {
            panic!("{:?} should parse", String::from_utf8_lossy(input));
        };
        assert_eq!(req.target_form(), form);
        assert_eq!(req.host(), host);
    }
}

#[test]
fn error_waits_for_its_line_to_end() {
    // The bad byte is seen, but the line is not complete: answering now would make the
    // answer depend on read boundaries.
    let mut slots = [HeaderSlot::EMPTY; 4];
    let config = Config::default();
    assert_eq!(
        complete(parse_request(
            b"GET / HTTP/1.1\r\nHost: a\r\nX: \0",
            &config,
            &mut slots
        )),
        Ok(false)
    );
    assert_eq!(
        complete(parse_request(
            b"GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n",
            &config,
            &mut slots
        )),
        Err(Error::InvalidHeaderValue)
    );
}

#[test]
fn limits_fire_on_partial_input() {
    let mut config = Config::default();
    config.limits.max_request_line = 16;
    config.limits.max_header_section = 16;
    let mut slots = [HeaderSlot::EMPTY; 4];
    assert_eq!(
        complete(parse_request(b"GET /aaaaaaaaaaaaaaaa", &config, &mut slots)),
        Err(Error::RequestLineTooLong)
    );
    assert_eq!(
        complete(parse_request(
            b"GET / HTTP/1.1\r\nHost: aaaaaaaaaaaaaa",
            &config,
            &mut slots
        )),
        Err(Error::HeaderSectionTooLarge)
    );
}

#[test]
fn error_statuses_and_replies_agree() {
    let all = [
        (Error::RequestLineTooLong, 414),
        (Error::HeaderSectionTooLarge, 431),
        (Error::TooManyHeaders, 431),
        (Error::TrailerSectionTooLarge, 431),
        (Error::PayloadTooLarge, 413),
        (Error::UnsupportedExpectation, 417),
        (Error::UnsupportedTransferCoding, 501),
        (Error::UnsupportedVersion, 505),
        (Error::ObsFold, 400),
        (Error::ConflictingContentLength, 400),
    ];
    for (e, status) in all {
        assert_eq!(e.status(), status);
        let reply = std::str::from_utf8(e.reply()).expect("replies are ASCII");
        assert!(reply.starts_with(&format!("HTTP/1.1 {status} ")), "{reply}");
        assert!(reply.ends_with("\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
        assert!(!e.to_string().is_empty());
    }
}
