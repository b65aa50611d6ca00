//! The worker's idle keep-alive connections, oldest first, so that the oldest can be shed
//! when the process runs out of descriptors.
//!
//! One list per worker thread (fibers never migrate, and a hibernating connection is
//! woken on the worker it hibernates on), shared by every [`Server`](super::Server) of
//! that worker: descriptors are a process resource, so any idle connection may give its
//! descriptor back. Insert, remove and pop-oldest are O(1): a doubly linked list threaded
//! through a `Slab`, whose entries are reused (no allocation per hibernation once the
//! slab has grown to the worker's peak of idle connections).

use anon_fiber::Hibernation;
use slab::Slab;
use std::cell::RefCell;

const NIL: usize = usize::MAX;

/// Names one entry; the tag tells a reused slab slot from the entry it replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdleKey {
    index: usize,
    tag: u64,
}

struct Node {
    prev: usize,
    next: usize,
    tag: u64,
    /// `None` only between [`push`] and [`attach`] (while `on_readable` registers).
    handle: Option<Hibernation>,
}

#[derive(Default)]
struct IdleList {
    nodes: Slab<Node>,
    /// Oldest.
    head: Option<usize>,
    /// Newest.
    tail: Option<usize>,
    next_tag: u64,
}

impl IdleList {
    fn push_back(&mut self) -> IdleKey {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        let prev = self.tail.unwrap_or(NIL);
        let index = self.nodes.insert(Node {
            prev,
            next: NIL,
            tag,
            handle: None,
        });
        match self.tail {
            Some(t) => self.nodes[t].next = index,
            None => self.head = Some(index),
        }
        self.tail = Some(index);
        IdleKey { index, tag }
    }

    fn get_mut(&mut self, key: IdleKey) -> Option<&mut Node> {
        self.nodes.get_mut(key.index).filter(|n| n.tag == key.tag)
    }

    fn unlink(&mut self, index: usize) -> Node {
        let node = self.nodes.remove(index);
        match node.prev {
            NIL => self.head = (node.next != NIL).then_some(node.next),
            p => self.nodes[p].next = node.next,
        }
        match node.next {
            NIL => self.tail = (node.prev != NIL).then_some(node.prev),
            n => self.nodes[n].prev = node.prev,
        }
        node
    }

    fn remove(&mut self, key: IdleKey) -> Option<Hibernation> {
        self.get_mut(key)?;
        self.unlink(key.index).handle
    }

    fn pop_front(&mut self) -> Option<Option<Hibernation>> {
        let head = self.head?;
        Some(self.unlink(head).handle)
    }
}

thread_local! {
    static IDLE: RefCell<IdleList> = RefCell::default();
}

/// Appends a new (newest) entry for a connection about to hibernate.
pub(crate) fn push() -> Option<IdleKey> {
    IDLE.try_with(|l| l.borrow_mut().push_back()).ok()
}

/// Gives the entry its handle once `on_readable` returned; if the connection already
/// woke (the entry is gone), the handle is dropped.
pub(crate) fn attach(key: IdleKey, handle: Hibernation) {
    let _ = IDLE.try_with(|l| {
        if let Some(n) = l.borrow_mut().get_mut(key) {
            n.handle = Some(handle);
        }
    });
}

/// Takes the entry off the list (the connection woke, or could not hibernate). A key
/// already removed (or shed) is ignored.
pub(crate) fn remove(key: IdleKey) {
    let h = IDLE.try_with(|l| l.borrow_mut().remove(key)).ok().flatten();
    // Dropped outside the borrow.
    drop(h);
}

/// Sheds up to `n` of this worker's oldest idle connections; returns how many were.
pub(crate) fn shed_oldest(n: usize) -> usize {
    let mut shed = 0;
    while shed < n {
        // Pop under the borrow, shed outside it: the callback removes its own entry.
        let Ok(Some(handle)) = IDLE.try_with(|l| l.borrow_mut().pop_front()) else {
            break;
        };
        if handle.is_some_and(|h| h.shed()) {
            shed += 1;
        }
    }
    shed
}

/// Idle connections listed on this worker.
pub(crate) fn len() -> usize {
    IDLE.try_with(|l| l.borrow().nodes.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_keeps_order_and_removes_in_constant_time() {
        let mut l = IdleList::default();
        let a = l.push_back();
        let b = l.push_back();
        let c = l.push_back();
        assert_eq!((l.head, l.tail), (Some(a.index), Some(c.index)));
        assert!(l.remove(b).is_none()); // present, no handle attached
        assert_eq!(l.nodes.len(), 2);
        assert_eq!(l.nodes[a.index].next, c.index);
        assert_eq!(l.nodes[c.index].prev, a.index);
        assert!(l.pop_front().is_some()); // a, the oldest
        assert!(l.get_mut(a).is_none());
        assert_eq!(l.head, Some(c.index));
        let d = l.push_back(); // reuses a slot: the tag tells the entries apart
        assert!(l.get_mut(a).is_none() && l.get_mut(b).is_none());
        assert_eq!((l.head, l.tail), (Some(c.index), Some(d.index)));
        assert!(l.pop_front().is_some()); // c
        assert!(l.get_mut(c).is_none());
        assert_eq!((l.head, l.tail), (Some(d.index), Some(d.index)));
        let _ = l.remove(b); // stale: ignored
        assert!(l.get_mut(d).is_some());
        assert!(l.pop_front().is_some()); // d
        assert!(l.pop_front().is_none());
        assert_eq!((l.head, l.tail), (None, None));
        assert!(l.nodes.is_empty());
    }
}
