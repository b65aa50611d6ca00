//! A bounded channel: the [`Queue`] ring plus two [`WaitList`]s, for callers that may wait.

use crate::park::{Again, Park, WaitList};
use crate::ring::{PopError, PushError, Queue, QueueStats};

/// Why [`Channel::send`] gave the value back.
#[derive(thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum SendError<T> {
    /// The channel was closed.
    #[error("channel is closed")]
    Closed(T),
    /// The channel was full and so many senders already wait that this one may not:
    /// answer "try again".
    #[error("channel is full and its wait list too: try again")]
    Again(T),
}

impl<T> SendError<T> {
    /// Takes the value back.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Closed(v) | SendError::Again(v) => v,
        }
    }
}

impl<T> std::fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("Closed(..)"),
            SendError::Again(_) => f.write_str("Again(..)"),
        }
    }
}

/// Why [`Channel::recv`] returned nothing.
#[derive(thiserror::Error, Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvError {
    /// The channel is closed and drained.
    #[error("channel is closed and empty")]
    Closed,
    /// The channel was empty and so many receivers already wait that this one may not.
    #[error("channel is empty and its wait list is full: try again")]
    Again,
}

/// A bounded MPMC channel whose senders and receivers may wait through a [`Park`] hook.
///
/// `try_send`/`try_recv` never wait; `send`/`recv` park the caller (a fiber, a thread:
/// whatever implements [`Park`]) until there is room or an item. The number of waiters on
/// each side is bounded too: past it, `send`/`recv` answer [`SendError::Again`] /
/// [`RecvError::Again`]. [`close`](Channel::close) wakes everyone.
///
/// ```
/// use anon_queue::{Channel, RecvError, ThreadParker};
/// use std::sync::Arc;
///
/// let ch = Arc::new(Channel::new(1, 4));
/// let tx = Arc::clone(&ch);
/// let producer = std::thread::spawn(move || {
///     let park = ThreadParker::current();
///     for i in 0..3 {
///         tx.send(i, &park).unwrap(); // waits while the channel is full
///     }
///     tx.close();
/// });
/// let park = ThreadParker::current();
/// let mut got = Vec::new();
/// loop {
///     match ch.recv(&park) {
///         Ok(v) => got.push(v),
///         Err(RecvError::Closed) => break,
///         Err(RecvError::Again) => unreachable!("only one receiver"),
///     }
/// }
/// producer.join().unwrap();
/// assert_eq!(got, [0, 1, 2]);
/// ```
pub struct Channel<T> {
    queue: Queue<T>,
    /// Senders waiting for room.
    senders: WaitList,
    /// Receivers waiting for an item.
    receivers: WaitList,
}

impl<T> Channel<T> {
    /// A channel of `capacity` items, admitting at most `max_waiters` waiting senders and as
    /// many waiting receivers.
    ///
    /// # Panics
    /// If `capacity` is 0 (see [`Queue::new`]).
    pub fn new(capacity: usize, max_waiters: usize) -> Channel<T> {
        Channel {
            queue: Queue::new(capacity),
            senders: WaitList::new(max_waiters),
            receivers: WaitList::new(max_waiters),
        }
    }

    /// Sends without waiting; wakes one waiting receiver on success.
    pub fn try_send(&self, value: T) -> Result<(), PushError<T>> {
        self.queue.try_push(value)?;
        self.receivers.notify_one();
        Ok(())
    }

    /// Receives without waiting; wakes one waiting sender on success.
    pub fn try_recv(&self) -> Result<T, PopError> {
        let v = self.queue.try_pop()?;
        self.senders.notify_one();
        Ok(v)
    }

    /// Sends, parking through `park` while the channel is full.
    pub fn send(&self, value: T, park: &impl Park) -> Result<(), SendError<T>> {
        let mut slot = Some(value);
        let res = self.senders.wait_until(park, || {
            let v = slot.take()?;
            match self.try_send(v) {
                Ok(()) => Some(Ok(())),
                Err(PushError::Closed(v)) => Some(Err(SendError::Closed(v))),
                Err(PushError::Full(v)) => {
                    slot = Some(v);
                    None
                }
            }
        });
        match res {
            Ok(r) => r,
            Err(Again) => match slot {
                Some(v) => Err(SendError::Again(v)),
                // `wait_until` returns `Again` only after an attempt put the value back.
                None => unreachable!("anon_queue: lost the value being sent"),
            },
        }
    }

    /// Receives, parking through `park` while the channel is empty.
    pub fn recv(&self, park: &impl Park) -> Result<T, RecvError> {
        let res = self.receivers.wait_until(park, || match self.try_recv() {
            Ok(v) => Some(Ok(v)),
            Err(PopError::Closed) => Some(Err(RecvError::Closed)),
            Err(PopError::Empty) => None,
        });
        match res {
            Ok(r) => r,
            Err(Again) => Err(RecvError::Again),
        }
    }

    /// Closes the channel and wakes every waiter. Items already queued can still be
    /// received. `true` if this call closed it.
    pub fn close(&self) -> bool {
        let first = self.queue.close();
        self.senders.notify_all();
        self.receivers.notify_all();
        first
    }

    /// `true` once closed.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// `true` when no item is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The fixed capacity.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Senders waiting now.
    pub fn waiting_senders(&self) -> usize {
        self.senders.len()
    }

    /// Receivers waiting now.
    pub fn waiting_receivers(&self) -> usize {
        self.receivers.len()
    }

    /// The underlying queue's counters.
    pub fn stats(&self) -> QueueStats {
        self.queue.stats()
    }
}

impl<T> std::fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("queue", &self.queue)
            .field("senders", &self.senders)
            .field("receivers", &self.receivers)
            .finish()
    }
}
