//! The conformance table, written from RFC 9112 (HTTP/1.1 messages) and RFC 9110 (HTTP
//! semantics). Each case is raw bytes and either the exact messages decoded (method,
//! target, version, every field, host, connection use, expectation, body, trailers) or
//! the exact error and status. Every case is decoded whole, byte by byte and with uneven
//! splits, which must all agree.

use super::support::{decode_all_ways, Msg};
use anon_http::{Config, Error, Version};

enum Expect {
    Accept {
        msgs: Vec<Msg>,
        closed: bool,
    },
    Reject {
        msgs: Vec<Msg>,
        error: Error,
        status: u16,
    },
}

struct Case {
    name: &'static str,
    input: Vec<u8>,
    config: Config,
    expect: Expect,
}

impl Case {
    fn cfg(mut self, f: impl FnOnce(&mut Config)) -> Case {
        f(&mut self.config);
        self
    }

    /// The decoder must end by saying `Closed` (the last message did not persist).
    fn closed(mut self) -> Case {
        if let Expect::Accept { closed, .. } = &mut self.expect {
            *closed = true;
        }
        self
    }

    /// Messages decoded before the error.
    fn after(mut self, prior: Vec<Msg>) -> Case {
        if let Expect::Reject { msgs, .. } = &mut self.expect {
            *msgs = prior;
        }
        self
    }
}

fn ok(name: &'static str, input: impl Into<Vec<u8>>, msgs: Vec<Msg>) -> Case {
    Case {
        name,
        input: input.into(),
        config: Config::default(),
        expect: Expect::Accept {
            msgs,
            closed: false,
        },
    }
}

fn bad(name: &'static str, input: impl Into<Vec<u8>>, error: Error, status: u16) -> Case {
    Case {
        name,
        input: input.into(),
        config: Config::default(),
        expect: Expect::Reject {
            msgs: Vec::new(),
            error,
            status,
        },
    }
}

/// An expected HTTP/1.1 request with no field yet.
fn req(method: &str, target: &str) -> Msg {
    Msg {
        method: method.into(),
        target: target.into(),
        version: Version::Http11,
        headers: Vec::new(),
        host: None,
        keep_alive: true,
        expect_continue: false,
        body: Vec::new(),
        trailers: Vec::new(),
    }
}

fn get(target: &str) -> Msg {
    req("GET", target)
}

impl Msg {
    /// A field; a `Host` field also sets the expected host (unless already set).
    fn h(mut self, name: &str, value: impl AsRef<[u8]>) -> Msg {
        let value = value.as_ref().to_vec();
        if name.eq_ignore_ascii_case("host") && self.host.is_none() {
            self.host = Some(value.clone());
        }
        self.headers.push((name.into(), value));
        self
    }

    fn host_is(mut self, host: &str) -> Msg {
        self.host = Some(host.as_bytes().to_vec());
        self
    }

    fn v10(mut self) -> Msg {
        self.version = Version::Http10;
        self.keep_alive = false;
        self
    }

    fn ka(mut self, keep_alive: bool) -> Msg {
        self.keep_alive = keep_alive;
        self
    }

    fn cont(mut self) -> Msg {
        self.expect_continue = true;
        self
    }

    fn body(mut self, b: impl AsRef<[u8]>) -> Msg {
        self.body = b.as_ref().to_vec();
        self
    }

    fn trailer(mut self, name: &str, value: &str) -> Msg {
        self.trailers.push((name.into(), value.as_bytes().to_vec()));
        self
    }
}

const H: &str = "GET / HTTP/1.1\r\nHost: a\r\n";

/// `GET / HTTP/1.1`, `Host: a`, then `rest` (field lines and the end of the head).
fn get_with(rest: &str) -> Vec<u8> {
    format!("{H}{rest}").into_bytes()
}

fn a() -> Msg {
    get("/").h("Host", "a")
}

/// A chunked POST with `body` as the encoded body.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut v = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    v.extend_from_slice(body);
    v
}

fn post_c() -> Msg {
    req("POST", "/c")
        .h("Host", "a")
        .h("Transfer-Encoding", "chunked")
}

fn many_headers(n: usize) -> Vec<u8> {
    let mut v = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 1..n {
        v.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
    }
    v.extend_from_slice(b"\r\n");
    v
}

fn many_headers_msg(n: usize) -> Msg {
    (1..n).fold(a(), |m, i| m.h(&format!("X-{i}"), i.to_string()))
}

fn lenient_lf(c: &mut Config) {
    c.leniency.allow_bare_lf = true;
}

fn skip_empty(c: &mut Config) {
    c.leniency.skip_leading_empty_lines = true;
}

fn higher_minor(c: &mut Config) {
    c.leniency.accept_higher_minor_version = true;
}

fn dup_cl(c: &mut Config) {
    c.leniency.allow_duplicate_content_length = true;
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Error::*;
    let big_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(8192));
    // "GET " + target + " HTTP/1.1" is exactly 8192 bytes.
    let max_path = format!("/{}", "a".repeat(8192 - 14));
    let max_target = format!("GET {max_path} HTTP/1.1\r\nHost: a\r\n\r\n");
    let big_field = format!("{H}X: {}\r\n\r\n", "v".repeat(64 * 1024));
    vec![
        // ---- request line (RFC 9112 §3) -------------------------------------------
        ok("minimal get", get_with("\r\n"), vec![a()]),
        ok("origin form with query", "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: a\r\n\r\n", vec![get("/a/b?x=1&y=%20").h("Host", "a")]),
        ok("sub-delims and colon in target", "GET /p;q=1/@:!$&'()*+,=~_.- HTTP/1.1\r\nHost: a\r\n\r\n", vec![get("/p;q=1/@:!$&'()*+,=~_.-").h("Host", "a")]),
        ok("method is case-sensitive token", "get / HTTP/1.1\r\nHost: a\r\n\r\n", vec![req("get", "/").h("Host", "a")]),
        ok("extension method", "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", vec![req("PURGE", "/x").h("Host", "a")]),
        ok("method with tchar symbols", "M-S.E_A~R!C#H$ / HTTP/1.1\r\nHost: a\r\n\r\n", vec![req("M-S.E_A~R!C#H$", "/").h("Host", "a")]),
        bad("method with delimiter", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidMethod, 400),
        bad("NUL in method", "GE\0T / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidMethod, 400),
        bad("tab as separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", InvalidMethod, 400),
        bad("two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidRequestLine, 400),
        bad("leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidRequestLine, 400),
        bad("method alone", "GET\r\nHost: a\r\n\r\n", InvalidRequestLine, 400),
        bad("no version (HTTP/0.9 form)", "GET /\r\nHost: a\r\n\r\n", InvalidRequestLine, 400),
        bad("two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", InvalidVersion, 400),
        bad("lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", InvalidVersion, 400),
        bad("version with trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", InvalidVersion, 400),
        bad("version without minor", "GET / HTTP/11\r\nHost: a\r\n\r\n", InvalidVersion, 400),
        bad("version with three digits", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", InvalidVersion, 400),
        bad("HTTP/2.0 is not supported", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", UnsupportedVersion, 505),
        bad("HTTP/0.9 is not supported", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", UnsupportedVersion, 505),
        bad("HTTP/3.0 is not supported", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", UnsupportedVersion, 505),
        bad("HTTP/1.2 strict", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", UnsupportedVersion, 505),
        ok("HTTP/1.2 as 1.1 when lenient", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", vec![a()]).cfg(higher_minor),
        bad("HTTP/1.9 as 1.1 still needs Host", "GET / HTTP/1.9\r\n\r\n", MissingHost, 400).cfg(higher_minor),
        bad("HTTP/2.0 even when lenient", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", UnsupportedVersion, 505).cfg(higher_minor),
        bad("CR inside the request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", InvalidRequestLine, 400),
        bad("target with space inside", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidVersion, 400),
        bad("fragment in target", "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        bad("double quote in target", "GET /\"x\" HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        bad("backslash in target", "GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        bad("non-ASCII in target", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), InvalidTarget, 400),
        bad("NUL in target", "GET /a\0 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        bad("DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        ok("percent escapes", "GET /%41%7e%7E HTTP/1.1\r\nHost: a\r\n\r\n", vec![get("/%41%7e%7E").h("Host", "a")]),
        bad("bad percent escape", "GET /%4G HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        bad("truncated percent escape", "GET /%4 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        bad("relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        ok("request line at the default 8 KiB limit", max_target.clone(), vec![get(&max_path).h("Host", "a")]),
        bad("request line over the default 8 KiB limit", big_target, RequestLineTooLong, 414),
        ok("request line at a configured limit", "GET /abcdefgh HTTP/1.1\r\nHost: a\r\n\r\n", vec![get("/abcdefgh").h("Host", "a")]).cfg(|c| c.limits.max_request_line = 22),
        bad("request line one over a configured limit", "GET /abcdefghi HTTP/1.1\r\nHost: a\r\n\r\n", RequestLineTooLong, 414).cfg(|c| c.limits.max_request_line = 22),
        // Found by the request_stream fuzz target: a line exactly at the limit whose CR
        // arrives alone in a later read was answered 414.
        ok("regression: line end just past a full window", "GET /abcdefgh HTTP/1.1\r\nHost: a\r\n\r\nGET /abcdefgh HTTP/1.1\r\nHost: b\r\n\r\n", vec![get("/abcdefgh").h("Host", "a"), get("/abcdefgh").h("Host", "b")]).cfg(|c| c.limits.max_request_line = 22),
        bad("unterminated long method", "A".repeat(40), RequestLineTooLong, 414).cfg(|c| c.limits.max_request_line = 32),

        // ---- request target forms (RFC 9112 §3.2) ------------------------------------
        ok("absolute form overrides Host", "GET http://example.com/p?q HTTP/1.1\r\nHost: other\r\n\r\n", vec![get("http://example.com/p?q").h("Host", "other").host_is("example.com")]),
        ok("absolute form without path", "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", vec![get("http://example.com").h("Host", "example.com")]),
        ok("absolute form with port", "GET https://h.example:8443/x HTTP/1.1\r\nHost: h\r\n\r\n", vec![get("https://h.example:8443/x").h("Host", "h").host_is("h.example:8443")]),
        ok("absolute form with IPv6 literal", "GET http://[::1]:80/ HTTP/1.1\r\nHost: x\r\n\r\n", vec![get("http://[::1]:80/").h("Host", "x").host_is("[::1]:80")]),
        bad("absolute form with empty authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        bad("absolute form with userinfo", "GET http://user@h/ HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, 400),
        bad("absolute form still needs Host", "GET http://example.com/ HTTP/1.1\r\n\r\n", MissingHost, 400),
        ok("asterisk form with OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", vec![req("OPTIONS", "*").h("Host", "a")]),
        bad("asterisk form with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTargetForm, 400),
        ok("authority form with CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", vec![req("CONNECT", "example.com:443").h("Host", "example.com:443")]),
        bad("CONNECT with origin form", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTargetForm, 400),
        bad("CONNECT without port", "CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTargetForm, 400),
        bad("authority form with GET", "GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTargetForm, 400),

        // ---- empty lines before the request (RFC 9112 §2.2) --------------------------
        bad("empty line first, strict", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", LeadingEmptyLine, 400),
        ok("empty line first, skipped when lenient", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", vec![a()]).cfg(skip_empty),
        ok("two empty lines first, skipped when lenient", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", vec![a()]).cfg(skip_empty),
        bad("bare LF first, skipping but no bare LF", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", BareLineFeed, 400).cfg(skip_empty),
        ok("bare LF first, skipping and bare LF", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", vec![a()]).cfg(|c| { skip_empty(c); lenient_lf(c) }),
        bad("skipped lines count against the line limit", "\r\n\r\n\r\nGET /abcdefgh HTTP/1.1\r\nHost: a\r\n\r\n", RequestLineTooLong, 414).cfg(|c| { skip_empty(c); c.limits.max_request_line = 24 }),

        // ---- field lines (RFC 9112 §5, RFC 9110 §5.5) --------------------------------
        ok("value OWS trimmed", get_with("X:   v \t \r\n\r\n"), vec![a().h("X", "v")]),
        ok("empty value", get_with("X:\r\n\r\n"), vec![a().h("X", "")]),
        ok("whitespace-only value", get_with("X: \t \r\n\r\n"), vec![a().h("X", "")]),
        ok("inner whitespace kept", get_with("X: a \t b\r\n\r\n"), vec![a().h("X", "a \t b")]),
        ok("obs-text in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\xff\r\n\r\n".to_vec(), vec![a().h("X", b"caf\xc3\xa9\xff")]),
        ok("name case kept, Host found in any case", "GET / HTTP/1.1\r\nhOsT: a\r\n\r\n", vec![get("/").h("hOsT", "a")]),
        ok("quotes and commas in value", get_with("sec-ch-ua: \"A\";v=\"1\", \"B\";v=\"2\"\r\n\r\n"), vec![a().h("sec-ch-ua", "\"A\";v=\"1\", \"B\";v=\"2\"")]),
        bad("NUL in value", get_with("X: a\0b\r\n\r\n"), InvalidHeaderValue, 400),
        bad("control byte in value", get_with("X: a\x01b\r\n\r\n"), InvalidHeaderValue, 400),
        bad("escape byte in value", get_with("X: a\x1bb\r\n\r\n"), InvalidHeaderValue, 400),
        bad("DEL in value", get_with("X: a\x7fb\r\n\r\n"), InvalidHeaderValue, 400),
        bad("lone CR in value", get_with("X: a\rb\r\n\r\n"), BareCarriageReturn, 400),
        bad("obs-fold with space", get_with("X: a\r\n b\r\n\r\n"), ObsFold, 400),
        bad("obs-fold with tab", get_with("X: a\r\n\tb\r\n\r\n"), ObsFold, 400),
        bad("whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", ObsFold, 400),
        bad("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", WhitespaceBeforeColon, 400),
        bad("tab before colon", get_with("X\t: v\r\n\r\n"), WhitespaceBeforeColon, 400),
        bad("no colon", get_with("Xv\r\n\r\n"), MissingColon, 400),
        bad("empty name", get_with(": v\r\n\r\n"), InvalidHeaderName, 400),
        bad("delimiter in name", get_with("X(y): v\r\n\r\n"), InvalidHeaderName, 400),
        bad("non-ASCII in name", b"GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: v\r\n\r\n".to_vec(), InvalidHeaderName, 400),
        bad("NUL in name", get_with("X\0: v\r\n\r\n"), InvalidHeaderName, 400),
        bad("CR not followed by LF at the end", get_with("\rX: y\r\n\r\n"), BareCarriageReturn, 400),

        // ---- bare LF (RFC 9112 §2.2) ---------------------------------------------------
        bad("bare LF after request line, strict", "GET / HTTP/1.1\nHost: a\r\n\r\n", BareLineFeed, 400),
        bad("bare LF after a field, strict", "GET / HTTP/1.1\r\nHost: a\n\r\n", BareLineFeed, 400),
        bad("bare LF ending the head, strict", "GET / HTTP/1.1\r\nHost: a\r\n\n", BareLineFeed, 400),
        bad("bare LF everywhere, strict", "GET / HTTP/1.1\nHost: a\nX: b \n\n", BareLineFeed, 400),
        ok("bare LF everywhere, lenient", "GET / HTTP/1.1\nHost: a\nX: b \n\n", vec![a().h("X", "b")]).cfg(lenient_lf),
        ok("mixed CRLF and LF, lenient", "GET / HTTP/1.1\r\nHost: a\n\r\n", vec![a()]).cfg(lenient_lf),
        bad("lone CR still rejected when LF is lenient", "GET / HTTP/1.1\rHost: a\r\n\r\n", BareCarriageReturn, 400).cfg(lenient_lf),

        // ---- limits on the header section ------------------------------------------
        ok("100 fields (the default limit)", many_headers(100), vec![many_headers_msg(100)]),
        bad("101 fields", many_headers(101), TooManyHeaders, 431),
        ok("3 fields at a configured limit of 3", many_headers(3), vec![many_headers_msg(3)]).cfg(|c| c.limits.max_headers = 3),
        bad("4 fields over a configured limit of 3", many_headers(4), TooManyHeaders, 431).cfg(|c| c.limits.max_headers = 3),
        bad("header section over the default 64 KiB", big_field, HeaderSectionTooLarge, 431),
        ok("header section at a configured limit", get_with("X: 12\r\n\r\n"), vec![a().h("X", "12")]).cfg(|c| c.limits.max_header_section = 18),
        bad("header section one over a configured limit", get_with("X: 123\r\n\r\n"), HeaderSectionTooLarge, 431).cfg(|c| c.limits.max_header_section = 18),

        // ---- Host (RFC 9112 §3.2, RFC 9110 §7.2) ----------------------------------------
        bad("HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", MissingHost, 400),
        bad("two Host fields", get_with("Host: b\r\n\r\n"), MultipleHost, 400),
        bad("two identical Host fields", get_with("Host: a\r\n\r\n"), MultipleHost, 400),
        bad("two Host fields in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", MultipleHost, 400),
        ok("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", vec![get("/").h("Host", "")]),
        ok("Host with port", "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", vec![get("/").h("Host", "example.com:8080")]),
        ok("Host IPv6 literal", "GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n", vec![get("/").h("Host", "[2001:db8::1]:443")]),
        ok("Host reg-name with percent escape", "GET / HTTP/1.1\r\nHost: ex%41mple\r\n\r\n", vec![get("/").h("Host", "ex%41mple")]),
        bad("Host with space inside", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", InvalidHost, 400),
        bad("Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", InvalidHost, 400),
        bad("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", InvalidHost, 400),
        bad("Host with non-numeric port", "GET / HTTP/1.1\r\nHost: a:x\r\n\r\n", InvalidHost, 400),
        bad("Host with unclosed IPv6 literal", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", InvalidHost, 400),

        // ---- HTTP/1.0 and connection persistence (RFC 9112 §9.3) ------------------------
        ok("HTTP/1.0 without Host closes", "GET /x HTTP/1.0\r\n\r\n", vec![get("/x").v10()]).closed(),
        ok("HTTP/1.0 keep-alive persists", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", vec![get("/").v10().h("Connection", "keep-alive").ka(true)]),
        ok("HTTP/1.0 Keep-Alive any case", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", vec![get("/").v10().h("Connection", "Keep-Alive").ka(true)]),
        ok("HTTP/1.0 keep-alive and close: close wins", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", vec![get("/").v10().h("Connection", "keep-alive, close")]).closed(),
        ok("HTTP/1.1 persists by default", get_with("\r\n"), vec![a()]),
        ok("HTTP/1.1 Connection: close", get_with("Connection: close\r\n\r\n"), vec![a().h("Connection", "close").ka(false)]).closed(),
        ok("HTTP/1.1 close in a list, any case", get_with("Connection: Upgrade, CLOSE\r\n\r\n"), vec![a().h("Connection", "Upgrade, CLOSE").ka(false)]).closed(),
        ok("unknown connection options ignored", get_with("Connection: foo, , bar\r\n\r\n"), vec![a().h("Connection", "foo, , bar")]),
        bad("Connection option not a token", get_with("Connection: a b\r\n\r\n"), InvalidConnection, 400),

        // ---- Expect (RFC 9110 §10.1.1) ------------------------------------------------
        ok("Expect: 100-continue surfaced", "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", vec![req("PUT", "/f").h("Host", "a").h("Expect", "100-continue").h("Content-Length", "2").cont().body("hi")]),
        ok("Expect: 100-Continue any case", get_with("Expect: 100-Continue\r\n\r\n"), vec![a().h("Expect", "100-Continue").cont()]),
        bad("other expectation", get_with("Expect: fly\r\n\r\n"), UnsupportedExpectation, 417),
        ok("HTTP/1.0 expectation ignored", "GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", vec![get("/").v10().h("Expect", "100-continue")]).closed(),

        // ---- Content-Length (RFC 9112 §6.2, RFC 9110 §8.6) ------------------------------
        ok("Content-Length: 0", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", vec![req("POST", "/").h("Host", "a").h("Content-Length", "0")]),
        ok("Content-Length body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", vec![req("POST", "/").h("Host", "a").h("Content-Length", "5").body("hello")]),
        ok("Content-Length leading zeros", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\n\r\nabc", vec![req("POST", "/").h("Host", "a").h("Content-Length", "003").body("abc")]),
        ok("GET with a body", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nz", vec![a().h("Content-Length", "1").body("z")]),
        bad("Content-Length with plus sign", get_with("Content-Length: +5\r\n\r\n"), InvalidContentLength, 400),
        bad("negative Content-Length", get_with("Content-Length: -1\r\n\r\n"), InvalidContentLength, 400),
        bad("Content-Length with inner space", get_with("Content-Length: 1 2\r\n\r\n"), InvalidContentLength, 400),
        bad("empty Content-Length", get_with("Content-Length:\r\n\r\n"), InvalidContentLength, 400),
        bad("hex Content-Length", get_with("Content-Length: 0x5\r\n\r\n"), InvalidContentLength, 400),
        bad("Content-Length over 64 bits", get_with("Content-Length: 18446744073709551616\r\n\r\n"), InvalidContentLength, 400),
        bad("differing Content-Length fields", get_with("Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), ConflictingContentLength, 400),
        bad("differing Content-Length fields, lenient", get_with("Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), ConflictingContentLength, 400).cfg(dup_cl),
        bad("identical Content-Length fields, strict", get_with("Content-Length: 1\r\nContent-Length: 1\r\n\r\nx"), DuplicateContentLength, 400),
        ok("identical Content-Length fields, lenient", get_with("Content-Length: 1\r\nContent-Length: 1\r\n\r\nx"), vec![a().h("Content-Length", "1").h("Content-Length", "1").body("x")]).cfg(dup_cl),
        bad("Content-Length list, strict", get_with("Content-Length: 1, 1\r\n\r\nx"), DuplicateContentLength, 400),
        ok("Content-Length list, lenient", get_with("Content-Length: 1, 1\r\n\r\nx"), vec![a().h("Content-Length", "1, 1").body("x")]).cfg(dup_cl),
        bad("differing Content-Length list, lenient", get_with("Content-Length: 1, 2\r\n\r\nx"), ConflictingContentLength, 400).cfg(dup_cl),
        bad("Content-Length list with empty element", get_with("Content-Length: 1,,1\r\n\r\nx"), InvalidContentLength, 400).cfg(dup_cl),
        bad("Content-Length over the body limit", get_with("Content-Length: 11\r\n\r\n"), PayloadTooLarge, 413).cfg(|c| c.limits.max_body = 10),
        ok("Content-Length at the body limit", get_with("Content-Length: 10\r\n\r\n0123456789"), vec![a().h("Content-Length", "10").body("0123456789")]).cfg(|c| c.limits.max_body = 10),
        bad("Content-Length over the default 8 MiB", get_with("Content-Length: 8388609\r\n\r\n"), PayloadTooLarge, 413),

        // ---- Transfer-Encoding (RFC 9112 §6.1, §6.3) -------------------------------------
        bad("Content-Length and Transfer-Encoding", get_with("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), ContentLengthWithTransferEncoding, 400),
        bad("Transfer-Encoding and Content-Length", get_with("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), ContentLengthWithTransferEncoding, 400),
        bad("Content-Length 0 and Transfer-Encoding", get_with("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n"), ContentLengthWithTransferEncoding, 400),
        ok("Transfer-Encoding: Chunked any case", "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", vec![req("POST", "/c").h("Host", "a").h("Transfer-Encoding", "Chunked")]),
        bad("gzip alone (not ending in chunked)", get_with("Transfer-Encoding: gzip\r\n\r\n"), ChunkedNotLast, 400),
        bad("chunked then gzip", get_with("Transfer-Encoding: chunked, gzip\r\n\r\n"), ChunkedNotLast, 400),
        bad("chunked twice", get_with("Transfer-Encoding: chunked, chunked\r\n\r\n"), ChunkedNotLast, 400),
        bad("chunked twice in two fields", get_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), ChunkedNotLast, 400),
        bad("identity (not ending in chunked)", get_with("Transfer-Encoding: identity\r\n\r\n"), ChunkedNotLast, 400),
        bad("chunked with parameters", get_with("Transfer-Encoding: chunked;q=1\r\n\r\n"), ChunkedNotLast, 400),
        bad("gzip then chunked: not implemented", get_with("Transfer-Encoding: gzip, chunked\r\n\r\n"), UnsupportedTransferCoding, 501),
        bad("gzip and chunked in two fields: not implemented", get_with("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), UnsupportedTransferCoding, 501),
        bad("unknown coding with parameters, then chunked", get_with("Transfer-Encoding: x-foo;a=\"b c\", chunked\r\n\r\n"), UnsupportedTransferCoding, 501),
        ok("empty list elements ignored", "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked,\r\n\r\n0\r\n\r\n", vec![req("POST", "/c").h("Host", "a").h("Transfer-Encoding", ", chunked,")]),
        bad("only empty list elements", get_with("Transfer-Encoding: , ,\r\n\r\n"), InvalidTransferEncoding, 400),
        bad("coding with a space inside", get_with("Transfer-Encoding: chu nked\r\n\r\n"), InvalidTransferEncoding, 400),
        bad("Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", TransferEncodingInHttp10, 400),

        // ---- chunked coding (RFC 9112 §7.1) ---------------------------------------------
        ok("chunked body", chunked(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), vec![post_c().body("hello world")]),
        ok("uppercase and lowercase hex sizes", chunked(b"A\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n"), vec![post_c().body("01234567890123456789a")]),
        ok("sizes with leading zeros", chunked(b"0003\r\nabc\r\n000\r\n\r\n"), vec![post_c().body("abc")]),
        ok("16 hex digits", chunked(b"0000000000000003\r\nabc\r\n0\r\n\r\n"), vec![post_c().body("abc")]),
        bad("17 hex digits", chunked(b"00000000000000003\r\nabc\r\n0\r\n\r\n"), ChunkSizeTooLong, 400),
        bad("size overflowing 64 bits", chunked(b"10000000000000000\r\n"), ChunkSizeTooLong, 400),
        bad("chunk size with no digit", chunked(b";a\r\n"), InvalidChunkSize, 400),
        bad("non-hex chunk size", chunked(b"g\r\n"), InvalidChunkSize, 400),
        bad("0x prefix", chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), InvalidChunkSize, 400),
        bad("sign in chunk size", chunked(b"+5\r\nhello\r\n0\r\n\r\n"), InvalidChunkSize, 400),
        bad("empty chunk line", chunked(b"\r\n"), InvalidChunkSize, 400),
        ok("extension name", chunked(b"3;last\r\nabc\r\n0\r\n\r\n"), vec![post_c().body("abc")]),
        ok("extension with token value", chunked(b"3;name=value;x=1\r\nabc\r\n0;end=yes\r\n\r\n"), vec![post_c().body("abc")]),
        ok("extension with quoted value and escape", chunked(b"3;q=\"a \\\" ;b\"\r\nabc\r\n0\r\n\r\n"), vec![post_c().body("abc")]),
        ok("extension with BWS", chunked(b"3 ; a = b ;c\r\nabc\r\n0\r\n\r\n"), vec![post_c().body("abc")]),
        bad("whitespace after size without extension", chunked(b"3 \r\nabc\r\n0\r\n\r\n"), InvalidChunkExtension, 400),
        bad("extension without name", chunked(b"3;\r\nabc\r\n0\r\n\r\n"), InvalidChunkExtension, 400),
        bad("extension value missing", chunked(b"3;a=\r\nabc\r\n0\r\n\r\n"), InvalidChunkExtension, 400),
        bad("unterminated quoted extension", chunked(b"3;a=\"b\r\nabc\r\n0\r\n\r\n"), InvalidChunkExtension, 400),
        bad("whitespace ending an extension", chunked(b"3;a \r\nabc\r\n0\r\n\r\n"), InvalidChunkExtension, 400),
        bad("NUL in extension", chunked(b"3;a\0\r\nabc\r\n0\r\n\r\n"), InvalidChunkExtension, 400),
        ok("extension at a configured limit", chunked(b"3;abcd\r\nabc\r\n0\r\n\r\n"), vec![post_c().body("abc")]).cfg(|c| c.limits.max_chunk_extension = 5),
        bad("extension over a configured limit", chunked(b"3;abcde\r\nabc\r\n0\r\n\r\n"), ChunkExtensionTooLong, 400).cfg(|c| c.limits.max_chunk_extension = 5),
        bad("data longer than its size", chunked(b"3\r\nabcd\r\n0\r\n\r\n"), InvalidChunkDelimiter, 400),
        bad("chunk line CR without LF", chunked(b"3\rabc\r\n0\r\n\r\n"), BareCarriageReturn, 400),
        bad("bare LF after chunk size, strict", chunked(b"3\nabc\r\n0\r\n\r\n"), BareLineFeed, 400),
        bad("bare LF after chunk data, strict", chunked(b"3\r\nabc\n0\r\n\r\n"), BareLineFeed, 400),
        ok("bare LF in chunk lines, lenient", chunked(b"3\nabc\n0\n\n"), vec![post_c().body("abc")]).cfg(lenient_lf),
        ok("bare LF after extension, lenient", chunked(b"3;a=b\nabc\r\n0;z\n\n"), vec![post_c().body("abc")]).cfg(lenient_lf),
        bad("chunks over the body limit", chunked(b"6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n"), PayloadTooLarge, 413).cfg(|c| c.limits.max_body = 10),
        ok("chunks at the body limit", chunked(b"6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n"), vec![post_c().body("abcdefghij")]).cfg(|c| c.limits.max_body = 10),
        ok("trailer fields", chunked(b"1\r\nx\r\n0\r\nChecksum: abc \r\nX-B:\t2\r\n\r\n"), vec![post_c().body("x").trailer("Checksum", "abc").trailer("X-B", "2")]),
        bad("trailer obs-fold", chunked(b"0\r\nA: b\r\n c\r\n\r\n"), ObsFold, 400),
        bad("trailer whitespace before colon", chunked(b"0\r\nA : b\r\n\r\n"), WhitespaceBeforeColon, 400),
        bad("trailer NUL in value", chunked(b"0\r\nA: \0\r\n\r\n"), InvalidHeaderValue, 400),
        bad("trailer bare LF, strict", chunked(b"0\r\nA: b\n\r\n"), BareLineFeed, 400),
        ok("trailer bare LF, lenient", chunked(b"0\r\nA: b\n\n"), vec![post_c().trailer("A", "b")]).cfg(lenient_lf),
        ok("trailers at a configured limit", chunked(b"0\r\nA: 1234\r\n\r\n"), vec![post_c().trailer("A", "1234")]).cfg(|c| c.limits.max_trailer_section = 11),
        bad("trailers over a configured limit", chunked(b"0\r\nA: 12345\r\n\r\n"), TrailerSectionTooLarge, 431).cfg(|c| c.limits.max_trailer_section = 11),

        // ---- pipelined streams (RFC 9112 §9.3.2) --------------------------------------
        ok("two pipelined GETs", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", vec![get("/1").h("Host", "a"), get("/2").h("Host", "a")]),
        ok("GET, POST with body, GET", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nGET GET /3 HTTP/1.1\r\nHost: a\r\n\r\n", vec![get("/1").h("Host", "a"), req("POST", "/2").h("Host", "a").h("Content-Length", "4").body("GET "), get("/3").h("Host", "a")]),
        ok("chunked then GET", [chunked(b"2\r\nhi\r\n0\r\nT: v\r\n\r\n"), b"GET /n HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()].concat(), vec![post_c().body("hi").trailer("T", "v"), get("/n").h("Host", "a")]),
        ok("nothing read after Connection: close", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n", vec![get("/1").h("Host", "a"), get("/2").h("Host", "a").h("Connection", "close").ka(false)]).closed(),
        ok("nothing read after HTTP/1.0 without keep-alive", "GET /1 HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n", vec![get("/1").v10()]).closed(),
        ok("HTTP/1.0 keep-alive pipelined", "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n", vec![get("/1").v10().h("Connection", "keep-alive").ka(true), get("/2").v10()]).closed(),
        bad("second request malformed", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost : a\r\n\r\n", WhitespaceBeforeColon, 400).after(vec![get("/1").h("Host", "a")]),
        bad("smuggled request after a CL.TE conflict is never read", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n", ContentLengthWithTransferEncoding, 400),
        bad("body bytes are not a request: CRLF after a body, strict", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", LeadingEmptyLine, 400).after(vec![req("POST", "/").h("Host", "a").h("Content-Length", "1").body("x")]),
        ok("CRLF after a body skipped when lenient", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", vec![req("POST", "/").h("Host", "a").h("Content-Length", "1").body("x"), a()]).cfg(skip_empty),
        ok("expect-continue then pipelined GET", "PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", vec![req("PUT", "/u").h("Host", "a").h("Expect", "100-continue").h("Transfer-Encoding", "chunked").cont().body("z"), a()]),
    ]
}

#[test]
fn conformance_table() {
    let cases = cases();
    assert!(cases.len() >= 120, "only {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");

    let mut failures = Vec::new();
    for case in &cases {
        let got = decode_all_ways(&case.config, &case.input);
        let verdict = match &case.expect {
            Expect::Accept { msgs, closed } => {
                if got.error.is_some()
                    || got.open.is_some()
                    || got.msgs != *msgs
                    || got.closed != *closed
                {
                    Some(format!("expected {msgs:#?} closed={closed}"))
                } else if !closed && got.consumed != case.input.len() {
                    Some(format!("consumed {} of {}", got.consumed, case.input.len()))
                } else {
                    None
                }
            }
            Expect::Reject {
                msgs,
                error,
                status,
            } => {
                let reply = format!("HTTP/1.1 {status} ");
                if got.error != Some(*error) || got.msgs != *msgs {
                    Some(format!("expected {error:?} after {msgs:#?}"))
                } else if error.status() != *status || !error.reply().starts_with(reply.as_bytes())
                {
                    Some(format!(
                        "{error:?} maps to {}, table says {status}",
                        error.status()
                    ))
                } else {
                    None
                }
            }
        };
        if let Some(v) = verdict {
            failures.push(format!("case `{}`: {v}\n got {got:#?}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Every leniency switch has cases run with it on and with it off.
#[test]
fn every_switch_is_tested_both_ways() {
    let cases = cases();
    let strict = Config::default();
    type Probe = fn(&Config) -> bool;
    let switches: [(&str, Probe); 4] = [
        ("allow_bare_lf", |c| c.leniency.allow_bare_lf),
        ("skip_leading_empty_lines", |c| {
            c.leniency.skip_leading_empty_lines
        }),
        ("accept_higher_minor_version", |c| {
            c.leniency.accept_higher_minor_version
        }),
        ("allow_duplicate_content_length", |c| {
            c.leniency.allow_duplicate_content_length
        }),
    ];
    for (name, on) in switches {
        assert!(!on(&strict), "{name} must be off by default");
        let with = cases.iter().filter(|c| on(&c.config)).count();
        let accepted_with = cases
            .iter()
            .filter(|c| on(&c.config) && matches!(c.expect, Expect::Accept { .. }))
            .count();
        assert!(
            with >= 2 && accepted_with >= 1,
            "{name}: {with} cases with it on"
        );
        // The same input must be rejected with the switch off.
        let twins = cases.iter().filter(|c| on(&c.config)).filter(|c| {
            cases.iter().any(|d| {
                !on(&d.config) && d.input == c.input && matches!(d.expect, Expect::Reject { .. })
            })
        });
        assert!(twins.count() >= 1, "{name}: no input tested both ways");
    }
}
