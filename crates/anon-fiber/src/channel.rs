//! A bounded MPMC channel for fibers (and threads): `anon_queue`'s ring and wait lists,
//! parked through [`Parker`].

use crate::fiber::WaitOn;
use crate::park::Parker;
use anon_queue::{Channel, PopError, PushError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub use anon_queue::{RecvError, SendError};

/// Why [`Sender::try_send`] handed the value back.
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel holds `capacity` items: the backpressure signal ("try again").
    #[error("channel is full")]
    Full(T),
    /// Every receiver is gone.
    #[error("channel is closed")]
    Closed(T),
}

impl<T> std::fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> TrySendError<T> {
    /// Takes the value back.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
}

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing queued now.
    #[error("channel is empty")]
    Empty,
    /// Every sender is gone and the channel is drained.
    #[error("channel is closed and empty")]
    Closed,
}

struct Shared<T> {
    chan: Channel<T>,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

/// Default bound on the waiters of each side of a [`channel`].
pub const DEFAULT_MAX_WAITERS: usize = 1024;

/// A bounded channel of `capacity` items (at least 1), with at most
/// [`DEFAULT_MAX_WAITERS`] parked senders and as many parked receivers.
///
/// ```
/// use anon_fiber::{channel, Runtime};
/// let rt = Runtime::builder().workers(2).build()?;
/// let (tx, rx) = channel::channel(1);
/// let p = rt.spawn_on(0, move || for i in 0..3 { tx.send(i).unwrap() })?;
/// let c = rt.spawn_on(1, move || rx.iter().sum::<i32>())?;
/// p.join().unwrap();
/// assert_eq!(c.join().unwrap(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    channel_with_waiters(capacity, DEFAULT_MAX_WAITERS)
}

/// A bounded channel with an explicit bound on waiting senders (and on waiting receivers):
/// a `send`/`recv` that would be one waiter too many answers `Again`.
pub fn channel_with_waiters<T>(capacity: usize, max_waiters: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        chan: Channel::new(capacity.max(1), max_waiters.max(1)),
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

/// The sending half; clone it for more producers. The channel closes when the last sender
/// or the last receiver is dropped.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Sends, parking the fiber (or thread) while the channel is full.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.shared
            .chan
            .send(value, &Parker::waiting_on(WaitOn::Channel))
    }

    /// Sends without waiting: [`TrySendError::Full`] hands the value back when full.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.shared.chan.try_send(value).map_err(|e| match e {
            PushError::Full(v) => TrySendError::Full(v),
            PushError::Closed(v) => TrySendError::Closed(v),
        })
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.shared.chan.len()
    }

    /// `true` when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.chan.close();
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("len", &self.len()).finish()
    }
}

/// The receiving half; clone it for more consumers.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// Receives, parking while the channel is empty; [`RecvError::Closed`] once every
    /// sender is gone and the channel is drained.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.shared.chan.recv(&Parker::waiting_on(WaitOn::Channel))
    }

    /// Receives without waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.shared.chan.try_recv().map_err(|e| match e {
            PopError::Empty => TryRecvError::Empty,
            PopError::Closed => TryRecvError::Closed,
        })
    }

    /// Iterates until the channel is closed and drained.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.shared.chan.len()
    }

    /// `true` when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.shared.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.chan.close();
        }
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .finish()
    }
}
