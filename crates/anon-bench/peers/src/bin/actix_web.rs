//! actix-web 4 peer: one worker, `/plaintext` and `/work?us=N`.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anon_bench_peers::{route, spin, Flags, Route, PLAINTEXT, WORK_BODY};

async fn handle(req: HttpRequest) -> HttpResponse {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    match route(target) {
        Route::Plaintext => HttpResponse::Ok()
            .content_type("text/plain")
            .body(PLAINTEXT),
        Route::Work(us) => {
            spin(us);
            HttpResponse::Ok()
                .content_type("text/plain")
                .body(WORK_BODY)
        }
        Route::NotFound => HttpResponse::NotFound().finish(),
    }
}

fn main() -> std::io::Result<()> {
    let flags = Flags::from_env();
    if flags.max_inflight.is_some() {
        eprintln!("peer-actix-web: --max-inflight is not supported here");
        std::process::exit(2);
    }
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().default_service(web::to(handle)))
            .workers(1)
            .backlog(1024)
            .max_connections(100_000)
            .bind(flags.socket_addr())?
            .run()
            .await
    })
}
