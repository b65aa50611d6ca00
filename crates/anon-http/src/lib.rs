//! HTTP/1.1 for Anon.
//!
//! This crate holds a strict, sans-IO codec ([`codec`]): request heads parsed into
//! borrowed views, RFC 9112 framing (`Content-Length`, chunked), a per-connection
//! [`MessageDecoder`] for pipelined streams, and response encoding with a cached `Date`.
//! The codec depends on no crate of ours and never does I/O. On it stand the fiber
//! `server` driver and `client` (feature `runtime`, on by default; without it the
//! crate is the codec alone).
//!
//! Strict by default: request smuggling lives in lenient framing, so anything RFC 9112
//! lets a server reject is rejected, with an [`Error`] naming the rule and mapping to the
//! status to answer. Each departure from that is a named switch in [`Leniency`]; every
//! input is bounded by [`Limits`].
//!
//! ```
//! use anon_http::{Config, Event, MessageDecoder, Error};
//!
//! let mut dec = MessageDecoder::new(Config::default());
//! let input = b"POST /echo HTTP/1.1\r\nHost: example.com\r\n\
//!               Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
//! let mut pos = 0;
//! let mut body = Vec::new();
//! loop {
//!     let d = dec.decode(&input[pos..])?;
//!     pos += d.consumed;
//!     match d.event {
//!         Event::Head(req) => assert_eq!(req.target(), "/echo"),
//!         Event::Body(bytes) => body.extend_from_slice(bytes),
//!         Event::End(_) => break,
//!         Event::Partial | Event::Closed => unreachable!("the input is complete"),
//!     }
//! }
//! assert_eq!(body, b"abc");
//!
//! // A request smuggling attempt is refused with the status to answer.
//! let mut dec = MessageDecoder::new(Config::default());
//! let bad = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\
//!             Transfer-Encoding: chunked\r\n\r\n";
//! let err = dec.decode(bad).unwrap_err();
//! assert_eq!(err, Error::ContentLengthWithTransferEncoding);
//! assert_eq!(err.status(), 400);
//! # Ok::<(), anon_http::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod codec;

pub use codec::*;

#[cfg(feature = "runtime")]
pub mod client;
#[cfg(feature = "runtime")]
pub mod server;

#[cfg(feature = "runtime")]
pub use server::{Again, HandlerError};
