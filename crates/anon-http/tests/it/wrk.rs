//! A real load generator: `wrk` with keep-alive and with 16 pipelined requests per write.
//!
//! Each wrk thread drives one connection and stops itself after a fixed number of
//! responses (Lua `wrk.thread:stop()`), so the count is exact: the server must have
//! served precisely what wrk received, and every response must be right.

use std::process::Command;

use anon_http::server::ServerConfig;

use crate::harness::{app_server, start, tool};

/// Runs wrk with `threads` connections, each stopping after `per_conn` responses sent
/// `depth` requests per write; returns (wrk's request count, bad responses, output).
fn run_wrk(url: &str, threads: usize, per_conn: usize, depth: usize) -> (u64, u64, String) {
    let script = format!(
        r#"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args)
  count = 0
  bad = 0
  local r = {{}}
  for i = 1, {depth} do r[i] = wrk.format(nil, "/plaintext") end
  req = table.concat(r)
end
function request() return req end
function response(status, headers, body)
  count = count + 1
  if status ~= 200 or body ~= "Hello, World!" then bad = bad + 1 end
  if count >= {per_conn} then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local c, b = 0, 0
  for _, t in ipairs(threads) do c = c + t:get("count"); b = b + t:get("bad") end
  io.write(string.format("ANON count=%d bad=%d\n", c, b))
end
"#
    );
    let dir = std::env::temp_dir().join(format!("anon-http-wrk-{}-{depth}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("script.lua");
    std::fs::write(&path, script).unwrap();
    let out = Command::new(tool("wrk"))
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &threads.to_string(),
            "-d",
            "5s",
            "--timeout",
            "5s",
            "-s",
        ])
        .arg(&path)
        .arg(url)
        .output()
        .expect("run wrk");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("Socket errors"), "{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
    let requests: u64 = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .map(|(n, _)| n.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no request count in wrk output: {text}"));
    let (count, bad) = text
        .lines()
        .find_map(|l| l.strip_prefix("ANON count="))
        .and_then(|rest| rest.split_once(" bad="))
        .map(|(c, b)| (c.parse::<u64>().unwrap(), b.trim().parse::<u64>().unwrap()))
        .unwrap_or_else(|| panic!("no script summary in wrk output: {text}"));
    assert_eq!(count, requests, "{text}");
    (requests, bad, text)
}

#[test]
fn wrk_keep_alive_every_response_right_and_counted() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let (requests, bad, text) = run_wrk(&t.url("/plaintext"), 2, 1000, 1);
    assert_eq!(requests, 2000, "each connection stops after 1000: {text}");
    assert_eq!(bad, 0, "{text}");
    assert_eq!(t.wait_stats(|s| s.served == requests).served, requests);
}

#[test]
fn wrk_pipelined_16_every_response_right_and_counted() {
    let t = start(app_server(ServerConfig::DEFAULT));
    let (requests, bad, text) = run_wrk(&t.url("/plaintext"), 2, 16 * 150, 16);
    assert_eq!(requests, 2 * 16 * 150, "{text}");
    assert_eq!(bad, 0, "{text}");
    let st = t.wait_stats(|s| s.served == requests);
    assert_eq!(st.served, requests);
    // Responses were batched: far fewer writes than responses.
    assert!(
        st.writes * 4 <= requests,
        "{} writes for {requests} responses",
        st.writes
    );
}
