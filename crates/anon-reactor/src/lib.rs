//! `anon-reactor`: the bottom layer of Anon, a small edge-triggered epoll reactor.
//!
//! One reactor per OS thread. The vocabulary follows mio:
//!
//! - [`Poll`] owns the epoll descriptor; only [`Poll::poll`] blocks.
//! - [`Registry`] registers raw descriptors with a caller-chosen [`Token`] and an
//!   [`Interest`] (readable / writable; edge-triggered by default, optionally oneshot,
//!   exclusive or level-triggered).
//! - [`Events`] is reusable storage for what one `poll` returned; each [`Event`] names a
//!   token and readiness hints.
//! - [`Waker`] (an eventfd) wakes a `Poll` from any thread; wakes coalesce.
//! - [`TimerWheel`] keeps a thread's timers (ms resolution, O(1) insert and cancel) and
//!   gives the poll timeout.
//! - [`Signals`] (signalfd) turns signals into readiness; [`PidFd`] turns a child's exit
//!   into readiness.
//!
//! The contract, in short (details on each type): edge-triggered readiness may be
//! spurious and must be drained until `WouldBlock`; oneshot registrations must be re-armed
//! with [`Registry::reregister`]; deregister before closing; tokens are the caller's (a
//! slab index is the expected use); poll timeouts round up to whole milliseconds.
//!
//! All `unsafe` code and every libc call live in the private `sys` module.
//!
//! ```
//! use anon_reactor::{Events, Interest, Poll, Token};
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::os::fd::AsRawFd;
//! use std::time::Duration;
//!
//! let mut poll = Poll::new()?;
//! let mut events = Events::with_capacity(64);
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! listener.set_nonblocking(true)?;
//! poll.registry().register(listener.as_raw_fd(), Token(0), Interest::READABLE)?;
//!
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! poll.poll(&mut events, Some(Duration::from_secs(5)))?;
//! assert!(events.iter().any(|e| e.token() == Token(0) && e.is_readable()));
//!
//! // Edge-triggered: accept until WouldBlock.
//! let (mut conn, _) = listener.accept()?;
//! assert_eq!(
//!     listener.accept().unwrap_err().kind(),
//!     std::io::ErrorKind::WouldBlock
//! );
//! client.write_all(b"ping")?;
//! let mut buf = [0u8; 4];
//! conn.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"ping");
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

mod event;
mod interest;
mod pidfd;
mod poll;
mod signal;
mod sync;
// The only module allowed `unsafe`: every libc call lives here.
#[allow(unsafe_code)]
mod sys;
mod timer;
mod token;
mod waker;

pub use event::{Event, Events};
pub use interest::Interest;
pub use pidfd::PidFd;
pub use poll::{Poll, Registry};
pub use signal::{block_signals, Signal, SignalInfo, Signals};
pub use timer::{TimerKey, TimerWheel};
pub use token::Token;
pub use waker::{WakeFlag, Waker};
