//! Integration tests of the facade: the re-exports and the `Server` over loopback.

mod reexports;
mod server;
