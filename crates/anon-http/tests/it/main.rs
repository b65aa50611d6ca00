//! The one integration-test binary of `anon-http`: a module per area.

mod chunked;
mod conformance;
mod encode;
mod head;
mod props;
mod support;

// The fiber server and client (feature `runtime`).
#[cfg(feature = "runtime")]
mod client;
#[cfg(feature = "runtime")]
mod curl;
#[cfg(feature = "runtime")]
mod harness;
#[cfg(feature = "runtime")]
mod refuse;
#[cfg(feature = "runtime")]
mod serve;
#[cfg(feature = "runtime")]
mod shed;
#[cfg(feature = "runtime")]
mod wrk;
