//! Integration tests of anon-loadgen against small servers on 127.0.0.1 (std threads).

mod hold;
mod lag;
mod mix;
mod outcomes;
mod server;
