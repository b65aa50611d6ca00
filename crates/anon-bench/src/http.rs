//! Suite `http`: request-head parse time of anon-http's strict codec against `httparse`,
//! for a minimal GET and a ~700-byte browser request with Chrome-like fields.
//!
//! Every contender parses the same bytes into caller-provided header storage (64
//! slots), in interleaved rounds; the table shows medians of ns per parse. anon-http
//! does more per parse than httparse: target, version, field-value and `Host`
//! validation, and the framing and connection decisions (`Content-Length`,
//! `Transfer-Encoding`, `Connection`, `Expect`). A third row shows the whole
//! `MessageDecoder` step a server would take for the head. Arguments: `--rounds N`
//! (default 15), `--quick` (a tenth of the iterations, for a smoke run).

use crate::report::{interleaved, Contender, Report};
use anon_http::{parse_request, Config, Event, HeaderSlot, MessageDecoder, Status};
use std::hint::black_box;
use std::time::Instant;

const MINIMAL: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";

/// A request as Chrome sends it for a script on a page, cookies included.
const BROWSER: &[u8] = b"GET /assets/js/app.min.js?v=20261123 HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\", \"Google Chrome\";v=\"131\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Accept: */*\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Dest: script\r\n\
Referer: https://www.example.com/articles/2026/11/parsing-http-requests\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n\
Cookie: session=7f3a9c2e1b8d4f60a5e2c7b9d1f3e8a4; theme=dark; _ga=GA1.2.1234567890.1700000000\r\n\
\r\n";

/// ns per parse with anon-http's `parse_request` (strict default config).
fn anon(buf: &[u8], iters: u64) -> f64 {
    let config = Config::default();
    let mut slots = [HeaderSlot::EMPTY; 64];
    let start = Instant::now();
    for _ in 0..iters {
        match parse_request(black_box(buf), &config, &mut slots) {
            Ok(Status::Complete(r)) => {
                black_box(r.head_len());
            }
            _ => panic!("benchmark input must parse"),
        }
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// ns per head with a `MessageDecoder` (head event, then the empty body's end).
fn anon_stream(buf: &[u8], iters: u64) -> f64 {
    let mut dec = MessageDecoder::new(Config::default());
    let start = Instant::now();
    for _ in 0..iters {
        let d = dec
            .decode(black_box(buf))
            .expect("benchmark input must parse");
        let Event::Head(r) = d.event else {
            panic!("head expected")
        };
        black_box(r.head_len());
        let end = dec.decode(&[]).expect("end of an empty body");
        black_box(end.consumed);
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// ns per parse with `httparse::Request::parse`.
fn httparse(buf: &[u8], iters: u64) -> f64 {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let start = Instant::now();
    for _ in 0..iters {
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(black_box(buf)) {
            Ok(httparse::Status::Complete(n)) => {
                black_box(n);
            }
            _ => panic!("benchmark input must parse"),
        }
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// Runs the suite.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut rounds = 15;
    let mut scale = 1;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--rounds needs a number")?
            }
            "--quick" => scale = 10,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let mut report = Report::new("http");
    report.notes.push(format!(
        "Single thread, {rounds} interleaved rounds, medians; inputs: minimal GET ({} bytes), \
         Chrome-like browser request ({} bytes, {} fields).",
        MINIMAL.len(),
        BROWSER.len(),
        BROWSER.windows(2).filter(|w| w == b"\r\n").count() - 2
    ));
    report.notes.push(
        "anon-http validates more per parse (target and Host syntax, field values, \
         framing and connection decisions); httparse only tokenizes."
            .into(),
    );
    for (metric, input, iters, goal) in [
        ("parse minimal GET", MINIMAL, 2_000_000 / scale, "≤ 35 ns"),
        (
            "parse browser request",
            BROWSER,
            400_000 / scale,
            "≤ 150 ns",
        ),
    ] {
        // Warm caches and branch predictors for every contender.
        anon(input, iters / 10);
        anon_stream(input, iters / 10);
        httparse(input, iters / 10);
        let mut contenders: Vec<Contender<'_>> = vec![
            (
                "anon-http parse_request",
                Box::new(move || anon(input, iters)),
            ),
            ("httparse 1.x", Box::new(move || httparse(input, iters))),
            (
                "anon-http MessageDecoder (head + end)",
                Box::new(move || anon_stream(input, iters)),
            ),
        ];
        let rows = interleaved(metric, "ns", Some(goal), rounds, &mut contenders);
        report.rows.extend(rows);
    }
    report.finish().map_err(|e| e.to_string())?;
    Ok(())
}
