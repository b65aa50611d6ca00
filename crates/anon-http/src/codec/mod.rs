//! The sans-IO codec: bytes in, borrowed views and events out; responses appended to a
//! caller's buffer. Nothing here reads or writes a socket, spawns, sleeps or depends on
//! a runtime.
//!
//! - [`head`]: [`parse_request`] and the types it returns ([`Request`], [`Header`]...).
//! - [`chunked`]: [`ChunkedDecoder`] and [`Trailers`].
//! - [`stream`]: [`MessageDecoder`], the per-connection decoder a server drives.
//! - [`encode`]: responses, chunks, [`DateCache`], [`OVERLOAD_REPLY`], requests.
//! - [`config`]: [`Limits`] and [`Leniency`], gathered in [`Config`].

mod chars;
pub mod chunked;
pub mod config;
pub mod encode;
mod error;
pub mod head;
pub mod stream;

pub use chunked::{Chunk, ChunkedDecoder, TrailerIter, Trailers, MAX_CHUNK_SIZE_DIGITS};
pub use config::{Config, Leniency, Limits};
pub use encode::{
    encode_chunk, encode_last_chunk, encode_request_head, encode_response, encode_response_head,
    DateCache, EncodeError, Encoded, ResponseBody, ResponseFraming, ResponseHead, CONTINUE_REPLY,
    OVERLOAD_REPLY,
};
pub use error::Error;
pub use head::{parse_request, Framing, Header, HeaderSlot, Headers, Request, TargetForm, Version};
pub use stream::{Decoded, Event, MessageDecoder};

/// The result of a parse that may need more input. `Partial` is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The input held a complete item.
    Complete(T),
    /// More bytes are needed; call again with the same bytes and more appended.
    Partial,
}

impl<T> Status<T> {
    /// `true` for `Complete`.
    pub fn is_complete(&self) -> bool {
        matches!(self, Status::Complete(_))
    }
}
