//! The one integration-test binary of `anon-http`: a module per area.

mod conformance;
mod support;
