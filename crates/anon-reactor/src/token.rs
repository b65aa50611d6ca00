/// The caller's name for a registration, handed back in every [`Event`](crate::Event).
///
/// Tokens belong to the caller: the reactor stores the `usize` with the registration and
/// returns it unchanged, never interpreting it, never checking it for uniqueness. The
/// expected use is an index into a [`slab`](https://docs.rs/slab) (or a `Vec`) of
/// connection states, so that an event finds its state in O(1). Reserve a few values (for
/// example `Token(usize::MAX)`) for things like the [`Waker`](crate::Waker) or a listener.
///
/// After a deregistration, events already returned by an earlier `poll` may still carry
/// the old token: a caller that reuses slab slots must be ready for an event whose token
/// now names a different (or no) state, and treat it as a spurious wakeup.
///
/// ```
/// use anon_reactor::Token;
/// let mut slab = vec!["listener", "conn-1"];
/// let t = Token(1);
/// assert_eq!(slab[t.0], "conn-1");
/// slab.clear();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub usize);

impl From<usize> for Token {
    fn from(v: usize) -> Token {
        Token(v)
    }
}

impl From<Token> for usize {
    fn from(t: Token) -> usize {
        t.0
    }
}
