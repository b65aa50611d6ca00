//! hyper 1.x peer on a tokio current_thread runtime (`pipeline_flush(true)`).
//!
//! Without `--max-inflight` the server has no limit (the unbounded baseline). With
//! `--max-inflight K` every request goes through tower's `LoadShed` over
//! `ConcurrencyLimit(K)`: past K requests in flight the service is not ready and the
//! request is answered `503 Service Unavailable` at once. So that the limit can ever be
//! reached on one thread, `/work` spins in slices of [`SLICE_US`] and yields to the
//! runtime between them (a CPU-bound handler that never yields would keep in flight at
//! most one request and the limit would never shed).

use anon_bench_peers::{route, Flags, Route, PLAINTEXT, WORK_BODY};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// Slice of CPU spin between two yields to the runtime, in µs.
const SLICE_US: u64 = 50;

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    r
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    Ok(match route(target) {
        Route::Plaintext => text(StatusCode::OK, PLAINTEXT),
        Route::Work(us) => {
            // Count only the time this request spent spinning, so that interleaved
            // requests each get their full N µs of CPU.
            let want = Duration::from_micros(us);
            let mut spun = Duration::ZERO;
            while spun < want {
                let slice = (want - spun).min(Duration::from_micros(SLICE_US));
                let t = Instant::now();
                while t.elapsed() < slice {
                    std::hint::spin_loop();
                }
                spun += t.elapsed();
                if spun < want {
                    tokio::task::yield_now().await;
                }
            }
            text(StatusCode::OK, WORK_BODY)
        }
        Route::NotFound => text(StatusCode::NOT_FOUND, ""),
    })
}

fn overloaded() -> Response<Full<Bytes>> {
    let mut r = text(StatusCode::SERVICE_UNAVAILABLE, "try again");
    r.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from_static("1"),
    );
    r
}

fn main() -> std::io::Result<()> {
    let flags = Flags::from_env();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(flags.socket_addr()).await?;
        let limited = flags.max_inflight.map(|k| {
            ServiceBuilder::new()
                .load_shed()
                .concurrency_limit(k)
                .service(tower::service_fn(handle))
        });
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    eprintln!("peer-hyper: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let io = TokioIo::new(stream);
            let limited = limited.clone();
            tokio::task::spawn(async move {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.pipeline_flush(true);
                let result = match limited {
                    None => {
                        builder
                            .serve_connection(io, hyper::service::service_fn(handle))
                            .await
                    }
                    Some(svc) => {
                        let svc = hyper::service::service_fn(move |req| {
                            let mut svc = svc.clone();
                            async move {
                                let svc = ServiceExt::<Request<Incoming>>::ready(&mut svc).await;
                                let out = match svc {
                                    Ok(s) => s.call(req).await,
                                    Err(e) => Err::<_, BoxError>(e),
                                };
                                Ok::<_, Infallible>(out.unwrap_or_else(|_| overloaded()))
                            }
                        });
                        builder.serve_connection(io, svc).await
                    }
                };
                drop(result);
            });
        }
    })
}
