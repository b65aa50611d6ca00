//! may_minihttp peer: one may worker thread, `/plaintext` and `/work?us=N`.

use anon_bench_peers::{route, spin, Flags, Route, PLAINTEXT, WORK_BODY};
use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};
use std::io;

struct Svc;

impl HttpService for Svc {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        match route(req.path()) {
            Route::Plaintext => rsp.header("Content-Type: text/plain").body(PLAINTEXT),
            Route::Work(us) => {
                spin(us);
                rsp.header("Content-Type: text/plain").body(WORK_BODY);
            }
            Route::NotFound => {
                rsp.status_code(404, "Not Found");
            }
        }
        Ok(())
    }
}

struct Factory;

impl HttpServiceFactory for Factory {
    type Service = Svc;
    fn new_service(&self, _: usize) -> Svc {
        Svc
    }
}

fn main() {
    let flags = Flags::from_env();
    if flags.max_inflight.is_some() {
        eprintln!("peer-may-minihttp: --max-inflight is not supported (may_minihttp has no limit)");
        std::process::exit(2);
    }
    may::config().set_workers(1);
    let server = Factory.start(flags.socket_addr()).expect("bind");
    server.join().expect("server coroutine");
}
