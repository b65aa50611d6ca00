//! The errors a handler returns, and [`Again`], the "try again" answer shared by the
//! server, the client and the facade.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use http::StatusCode;

/// "Try again later": a bounded queue, pool or downstream is full.
///
/// The backpressure answer of the whole stack, not a failure: the server turns it into
/// `503 Service Unavailable` with `Retry-After`, and the [client](crate::client) returns it
/// when its pool is exhausted or a downstream answered 503, so a handler passes a
/// downstream's "try again" up with `?`.
///
/// ```
/// use anon_http::{Again, HandlerError};
/// use std::time::Duration;
///
/// fn lookup() -> Result<u32, Again> {
///     Err(Again::after(Duration::from_millis(1500)))
/// }
/// fn handler() -> Result<u32, HandlerError> {
///     Ok(lookup()? + 1)
/// }
/// let err = handler().unwrap_err();
/// assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(err.again().unwrap().retry_after_secs(), 2); // rounded up
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("busy: try again in {retry_after:?}")]
pub struct Again {
    /// How long the caller should wait before retrying.
    pub retry_after: Duration,
}

impl Again {
    /// The default suggestion: one second.
    pub const DEFAULT: Again = Again {
        retry_after: Duration::from_secs(1),
    };

    /// "Try again after `retry_after`".
    pub const fn after(retry_after: Duration) -> Again {
        Again { retry_after }
    }

    /// The `Retry-After` value in whole seconds: rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        secs.max(1)
    }
}

impl Default for Again {
    fn default() -> Self {
        Again::DEFAULT
    }
}

impl From<Again> for io::Error {
    /// `ErrorKind::WouldBlock` carrying the `Again` (recovered by
    /// `From<io::Error> for HandlerError`).
    fn from(a: Again) -> io::Error {
        io::Error::new(io::ErrorKind::WouldBlock, a)
    }
}

/// Why a handler produced no response of its own. Each variant maps to a status
/// ([`HandlerError::status`]); the server answers with it and keeps the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// Overloaded (here or downstream): `503` with `Retry-After`.
    #[error(transparent)]
    Again(#[from] Again),
    /// Answer this status with an empty body (e.g. `404`).
    #[error("reply {0}")]
    Status(StatusCode),
    /// A downstream service failed (not with a "try again"): `502`.
    #[error("downstream failed: {0}")]
    Upstream(#[source] Box<dyn StdError + Send + Sync>),
    /// Anything else: `500`.
    #[error(transparent)]
    Internal(Box<dyn StdError + Send + Sync>),
}

impl HandlerError {
    /// An [`Internal`](HandlerError::Internal) error (`500`).
    pub fn internal(e: impl Into<Box<dyn StdError + Send + Sync>>) -> HandlerError {
        HandlerError::Internal(e.into())
    }

    /// The status the server answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            HandlerError::Again(_) => StatusCode::SERVICE_UNAVAILABLE,
            HandlerError::Status(s) => *s,
            HandlerError::Upstream(_) => StatusCode::BAD_GATEWAY,
            HandlerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `Again` inside, if this is one.
    pub fn again(&self) -> Option<Again> {
        match self {
            HandlerError::Again(a) => Some(*a),
            _ => None,
        }
    }
}

impl From<StatusCode> for HandlerError {
    fn from(s: StatusCode) -> HandlerError {
        HandlerError::Status(s)
    }
}

impl From<io::Error> for HandlerError {
    /// `WouldBlock` is "try again" (EAGAIN all the way up; an [`Again`] inside keeps its
    /// delay); anything else is `Internal`.
    fn from(e: io::Error) -> HandlerError {
        if e.kind() == io::ErrorKind::WouldBlock {
            let a = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<Again>())
                .copied()
                .unwrap_or_default();
            return HandlerError::Again(a);
        }
        HandlerError::Internal(Box::new(e))
    }
}

impl From<anon_fiber::SpawnError> for HandlerError {
    /// `SpawnError::Again` (the fiber limit) is "try again"; the rest is `Internal`.
    fn from(e: anon_fiber::SpawnError) -> HandlerError {
        match e {
            anon_fiber::SpawnError::Again => HandlerError::Again(Again::DEFAULT),
            e => HandlerError::Internal(Box::new(e)),
        }
    }
}

impl From<anon_fiber::BlockingError> for HandlerError {
    /// A full blocking pool is "try again"; the rest is `Internal`.
    fn from(e: anon_fiber::BlockingError) -> HandlerError {
        match e {
            anon_fiber::BlockingError::Again => HandlerError::Again(Again::DEFAULT),
            e => HandlerError::Internal(e.to_string().into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(Again::after(Duration::ZERO).retry_after_secs(), 1);
        assert_eq!(Again::after(Duration::from_millis(1)).retry_after_secs(), 1);
        assert_eq!(Again::after(Duration::from_secs(2)).retry_after_secs(), 2);
        assert_eq!(
            Again::after(Duration::from_millis(2001)).retry_after_secs(),
            3
        );
    }

    #[test]
    fn would_block_io_error_is_again_with_its_delay() {
        let a = Again::after(Duration::from_secs(7));
        let e: HandlerError = io::Error::from(a).into();
        assert_eq!(e.again(), Some(a));
        let e: HandlerError = io::Error::from(io::ErrorKind::WouldBlock).into();
        assert_eq!(e.again(), Some(Again::DEFAULT));
        let e: HandlerError = io::Error::from(io::ErrorKind::BrokenPipe).into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
