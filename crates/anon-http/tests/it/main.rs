//! The one integration-test binary of `anon-http`: a module per area.

mod chunked;
mod conformance;
mod encode;
mod head;
mod props;
mod support;
