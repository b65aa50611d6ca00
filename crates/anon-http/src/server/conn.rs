//! One connection: the read buffer, the decoder, the batched output, request bodies,
//! hibernation and the lingering close.
//!
//! Invariants:
//! - `buf[start..end]` holds the bytes read and not yet consumed by the decoder;
//!   `pend` is a range of decoded body bytes (inside `buf[..start]`) not yet handed to the
//!   handler. The buffer is compacted or grown only while `pend` is empty.
//! - Every read that may block is preceded by a flush of `out`, so a client never waits
//!   for a response that sits in our buffer (pipelined responses still leave together:
//!   they are flushed when the input runs dry).
//! - The buffer never grows past what one head may take under the codec's limits; bodies
//!   stream through it.
//! - `drained` is true only while the last read returned less than it asked for, i.e. it
//!   emptied the socket: bytes arriving later raise a readiness edge, so the connection
//!   may hibernate without first trying a read that would only say `WouldBlock`.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anon_fiber::net::TcpStream;
use anon_fiber::Awakened;
use http::header::{HeaderName, HeaderValue, CONNECTION};
use http::{Method, StatusCode, Uri};

use super::{
    Admission, Again, Body, Handler, Payload, Server, ServerConfig, OVERLOAD_KEEP_ALIVE_REPLY,
};
use crate::{
    encode_chunk, encode_last_chunk, encode_response_head, DateCache, Error, Event, Framing,
    MessageDecoder, ResponseBody, ResponseFraming, ResponseHead, Version, CONTINUE_REPLY,
    OVERLOAD_REPLY,
};

const TIMEOUT_REPLY: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
const PANIC_REPLY: &[u8] =
    b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
/// Input a lingering close reads and discards at most.
const LINGER_BYTES: usize = 256 * 1024;
/// A body piece at most this long is copied into the output batch; longer ones are
/// written straight from the handler's buffer.
const COPY_BODY_MAX: usize = 16 * 1024;
/// Read size for streamed response bodies.
const STREAM_CHUNK: usize = 8 * 1024;

thread_local! {
    /// The worker's `Date` value (fibers never migrate, so this is per worker).
    static DATE: RefCell<DateCache> = RefCell::new(DateCache::new(SystemTime::now()));
}

fn with_date<R>(f: impl FnOnce(&DateCache) -> R) -> R {
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        d.refresh(SystemTime::now());
        f(&d)
    })
}

/// How a connection is entered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    /// A new connection: the first head must be complete within the head timeout of
    /// this instant.
    Fresh(Instant),
    /// Woken from hibernation between requests.
    Resumed,
}

/// What a hibernating connection waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// The first request of a connection accepted at this instant.
    FirstRequest(Instant),
    /// The next keep-alive request.
    Idle,
}

/// How the serving loop ended.
enum Exit {
    /// Idle with nothing buffered: park the socket in the reactor.
    Hibernate,
    /// Close now (the peer is gone or the framing is lost).
    Close,
    /// Close after a lingering read (we close while the peer may still send).
    Linger,
}

/// Why a request body cannot be read further.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Codec(Error),
    TimedOut,
    Eof,
    Io(io::ErrorKind),
    /// The read buffer cannot grow (cannot happen under the codec's limits).
    Full,
}

impl Fault {
    fn to_io(self) -> io::Error {
        match self {
            Fault::Codec(e) => io::Error::new(io::ErrorKind::InvalidData, e),
            Fault::TimedOut => io::ErrorKind::TimedOut.into(),
            Fault::Eof => io::ErrorKind::UnexpectedEof.into(),
            Fault::Io(k) => k.into(),
            Fault::Full => io::Error::other("read buffer full"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum BodyState {
    Reading,
    Done,
    Failed(Fault),
}

/// What the head of the current request said, beyond what the handler sees.
#[derive(Debug, Clone, Copy)]
struct ReqInfo {
    keep_alive: bool,
    version: Version,
    head: bool,
    expect: bool,
    framing: Framing,
}

/// A refused request whose connection stays open: its head is consumed, its body (of
/// `body` bytes, `Content-Length` framed) is still to skip.
#[derive(Debug, Clone, Copy)]
struct Skip {
    version: Version,
    body: u64,
}

/// The state of one connection while a fiber serves it.
pub(crate) struct Conn {
    stream: TcpStream,
    cfg: ServerConfig,
    stats: Arc<super::Stats>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_buf: usize,
    dec: MessageDecoder,
    out: Vec<u8>,
    last_read: Instant,
    /// The last read emptied the socket (see the module invariants).
    drained: bool,
    pend: (usize, usize),
    body: BodyState,
    continue_pending: bool,
}

/// One step of the request loop. Built and matched once per request on the stack;
/// boxing the large variant would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Step<P> {
    Request(P, ReqInfo, http::request::Parts),
    NeedMore,
    Closed,
    Malformed(Error),
    /// Refused by admission; with a [`Skip`] the connection stays open.
    Rejected(Again, Option<Skip>),
}

impl Conn {
    fn new(stream: TcpStream, cfg: ServerConfig, stats: Arc<super::Stats>) -> Conn {
        let limits = cfg.codec.limits;
        let max_buf = limits
            .max_request_line
            .saturating_add(limits.max_header_section)
            .saturating_add(8 * 1024)
            .min(1 << 30);
        let initial = cfg.read_buffer.clamp(512, max_buf);
        Conn {
            stream,
            cfg,
            stats,
            buf: vec![0; initial],
            start: 0,
            end: 0,
            max_buf,
            dec: MessageDecoder::new(cfg.codec),
            out: Vec::with_capacity(initial),
            last_read: Instant::now(),
            drained: false,
            pend: (0, 0),
            body: BodyState::Done,
            continue_pending: false,
        }
    }

    /// Starts with `bytes` already read from the socket (a read that returned
    /// `bytes.len()`, asked for [`FIRST_READ`]).
    fn preload(&mut self, bytes: &[u8], read_at: Instant) {
        if bytes.is_empty() {
            return;
        }
        if self.buf.len() < bytes.len() {
            self.buf.resize(bytes.len(), 0);
        }
        self.buf[..bytes.len()].copy_from_slice(bytes);
        self.start = 0;
        self.end = bytes.len();
        self.drained = bytes.len() < FIRST_READ;
        self.last_read = read_at;
    }

    /// The request loop.
    fn run<H: Handler, A: Admission>(&mut self, srv: &Server<H, A>, start: Start) -> Exit {
        let mut head_clock = match start {
            Start::Fresh(t) => Some(t),
            Start::Resumed => None,
        };
        let mut in_row = 0usize;
        loop {
            match self.next_head(srv) {
                Step::Request(permit, info, parts) => {
                    head_clock = None;
                    let keep = self.handle(srv, info, parts);
                    srv.admission.release(permit);
                    match keep {
                        Ok(true) => {}
                        Ok(false) => return self.finish(Exit::Linger),
                        Err(exit) => return self.finish(exit),
                    }
                    if let Err(exit) = self.answered(&mut in_row) {
                        return exit;
                    }
                }
                Step::NeedMore => {
                    in_row = 0;
                    if self.start == self.end && head_clock.is_none() {
                        // Between requests with nothing buffered: idle.
                        if self.flush().is_err() {
                            return Exit::Close;
                        }
                        self.reset_idle();
                        if self.cfg.hibernate && anon_fiber::worker_index().is_some() {
                            if self.drained {
                                // Nothing arrived since the socket was emptied, or an edge
                                // says so and wakes the connection at once: skip a read
                                // that would almost always answer `WouldBlock`.
                                return Exit::Hibernate;
                            }
                            match self.read_now() {
                                Ok(0) => return Exit::Close,
                                Ok(_) => {}
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                    return Exit::Hibernate;
                                }
                                Err(_) => return Exit::Close,
                            }
                        } else {
                            let deadline = Instant::now().checked_add(self.cfg.idle_timeout);
                            match self.read_more(deadline) {
                                Ok(0) | Err(_) => return Exit::Close,
                                Ok(_) => {}
                            }
                        }
                        head_clock = Some(self.last_read);
                    } else {
                        let clock = *head_clock.get_or_insert(self.last_read);
                        let deadline = clock.checked_add(self.cfg.head_timeout);
                        match self.read_more(deadline) {
                            Ok(0) => return Exit::Close,
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                                srv.stats.timeouts.add(1);
                                self.out.extend_from_slice(TIMEOUT_REPLY);
                                return self.finish(Exit::Linger);
                            }
                            Err(e) if e.kind() == io::ErrorKind::OutOfMemory => {
                                // The buffer cannot grow: a head larger than the limits
                                // allow slipped through; answer as the codec would.
                                srv.stats.malformed.add(1);
                                self.out
                                    .extend_from_slice(Error::HeaderSectionTooLarge.reply());
                                return self.finish(Exit::Linger);
                            }
                            Err(_) => return Exit::Close,
                        }
                    }
                }
                Step::Closed => return self.finish(Exit::Linger),
                Step::Malformed(e) => {
                    srv.stats.malformed.add(1);
                    self.out.extend_from_slice(e.reply());
                    return self.finish(Exit::Linger);
                }
                Step::Rejected(again, skip) => {
                    srv.stats.rejected.add(1);
                    let Some(skip) = skip else {
                        overload_reply(&mut self.out, again, Version::Http11, false);
                        return self.finish(Exit::Linger);
                    };
                    head_clock = None;
                    // Queued first: a body still on its way is read after the reply left.
                    overload_reply(&mut self.out, again, skip.version, true);
                    if let Err(exit) = self.skip_body(srv, skip.body) {
                        return self.finish(exit);
                    }
                    if self.out.len() >= self.cfg.write_batch && self.flush().is_err() {
                        return Exit::Close;
                    }
                    if let Err(exit) = self.answered(&mut in_row) {
                        return exit;
                    }
                }
            }
        }
    }

    /// Counts one more request answered in a row from buffered bytes; past the pipeline
    /// budget, flushes and lets the worker's other fibers run.
    fn answered(&mut self, in_row: &mut usize) -> Result<(), Exit> {
        *in_row += 1;
        if *in_row >= self.cfg.pipeline_budget.max(1) && self.start < self.end {
            if self.flush().is_err() {
                return Err(Exit::Close);
            }
            anon_fiber::yield_now();
            *in_row = 0;
        }
        Ok(())
    }

    /// Reads and discards a refused request's body (`len` bytes, within the drain limit).
    fn skip_body<H, A>(&mut self, srv: &Server<H, A>, len: u64) -> Result<(), Exit> {
        if len == 0 {
            // The decoder's `End` comes next; `next_head` steps over it.
            return Ok(());
        }
        self.pend = (self.start, self.start);
        self.body = BodyState::Reading;
        self.continue_pending = false;
        let r = self.drain(len);
        self.pend = (self.start, self.start);
        // The reply is already queued (maybe sent): a fault only ends the connection.
        match r {
            Ok(true) => Ok(()),
            Ok(false) => Err(Exit::Linger),
            Err(Fault::TimedOut) => {
                srv.stats.timeouts.add(1);
                Err(Exit::Linger)
            }
            Err(Fault::Codec(_) | Fault::Full) => {
                srv.stats.malformed.add(1);
                Err(Exit::Linger)
            }
            Err(Fault::Eof | Fault::Io(_)) => Err(Exit::Close),
        }
    }

    /// Flushes what is buffered before closing; a failed flush closes at once.
    fn finish(&mut self, exit: Exit) -> Exit {
        match self.flush() {
            Ok(()) => exit,
            Err(_) => Exit::Close,
        }
    }

    /// Decodes the next request head (or learns that more bytes are needed).
    fn next_head<'s, H: Handler, A: Admission>(
        &mut self,
        srv: &'s Server<H, A>,
    ) -> Step<A::Permit<'s>> {
        let arrived = self.last_read;
        // A bodiless request leaves the decoder before its `End`: step over it.
        let mut d = match self.dec.decode(&self.buf[self.start..self.end]) {
            Ok(d) => d,
            Err(e) => return Step::Malformed(e),
        };
        if let Event::End(_) = d.event {
            self.start += d.consumed;
            d = match self.dec.decode(&self.buf[self.start..self.end]) {
                Ok(d) => d,
                Err(e) => return Step::Malformed(e),
            };
        }
        match d.event {
            Event::Head(req) => {
                let permit = match srv.admission.admit(&req, arrived) {
                    Ok(p) => p,
                    Err(a) => {
                        let buffered = (self.end - self.start).saturating_sub(d.consumed);
                        let skip = refusal_skip(&self.cfg, &srv.admission, &req, buffered as u64);
                        if skip.is_some() {
                            self.start += d.consumed;
                        }
                        return Step::Rejected(a, skip);
                    }
                };
                let info = ReqInfo {
                    keep_alive: req.keep_alive(),
                    version: req.version(),
                    head: req.method() == "HEAD",
                    expect: req.expect_continue(),
                    framing: req.framing(),
                };
                let parts = match to_parts(&req) {
                    Some(p) => p,
                    None => {
                        srv.admission.release(permit);
                        return Step::Malformed(Error::InvalidTarget);
                    }
                };
                self.start += d.consumed;
                Step::Request(permit, info, parts)
            }
            Event::Partial => {
                self.start += d.consumed;
                Step::NeedMore
            }
            Event::Closed => Step::Closed,
            // Bodies are consumed through `Body` and `drain`; the decoder is at a head
            // here, so these cannot come. Skip them rather than trust that.
            Event::Body(_) | Event::End(_) => {
                self.start += d.consumed;
                Step::NeedMore
            }
        }
    }

    /// Runs the handler for one request and queues its response. `Ok(keep_alive)`, or
    /// how to end the connection.
    fn handle<H: Handler, A: Admission>(
        &mut self,
        srv: &Server<H, A>,
        info: ReqInfo,
        parts: http::request::Parts,
    ) -> Result<bool, Exit> {
        let length = match info.framing {
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
        };
        self.pend = (self.start, self.start);
        self.body = if length == Some(0) {
            BodyState::Done
        } else {
            BodyState::Reading
        };
        self.continue_pending = info.expect && matches!(self.body, BodyState::Reading);

        srv.stats.in_flight.add(1);
        let req = http::Request::from_parts(parts, Body::new(self, length));
        let result = panic::catch_unwind(AssertUnwindSafe(|| srv.handler.call(req)));
        srv.stats.in_flight.sub(1);
        let result = match result {
            Ok(r) => r,
            Err(p) => {
                if anon_fiber::is_cancellation(&*p) {
                    // The runtime is cancelling this fiber: let the unwind go on.
                    panic::resume_unwind(p);
                }
                srv.stats.panics.add(1);
                self.out.extend_from_slice(PANIC_REPLY);
                return Err(Exit::Linger);
            }
        };
        self.pend = (self.start, self.start);

        let mut keep = info.keep_alive;
        if let BodyState::Failed(f) = self.body {
            return Err(self.fault_reply(srv, f));
        }
        if matches!(self.body, BodyState::Reading) {
            if self.continue_pending {
                // The client waits for `100 Continue` we never sent: answer and close
                // rather than read a body nobody wants.
                keep = false;
            } else {
                match self.drain(self.cfg.drain_limit) {
                    Ok(true) => {}
                    Ok(false) => keep = false,
                    Err(f) => return Err(self.fault_reply(srv, f)),
                }
            }
        }

        let keep = match result {
            Ok(resp) if !resp.status().is_informational() => {
                srv.stats.served.add(1);
                self.write_response(resp, info, keep)?
            }
            Ok(_) => {
                srv.stats.handler_errors.add(1);
                status_reply(
                    &mut self.out,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    info.version,
                    keep,
                )
            }
            Err(e) => {
                let again = e.again();
                if again.is_some() {
                    srv.stats.again.add(1);
                } else {
                    srv.stats.handler_errors.add(1);
                }
                let secs = again.map(|a| a.retry_after_secs());
                status_reply(&mut self.out, e.status(), secs, info.version, keep)
            }
        };
        if self.out.len() >= self.cfg.write_batch && self.flush().is_err() {
            return Err(Exit::Close);
        }
        Ok(keep)
    }

    /// Queues the reply for a body fault and says how to end.
    fn fault_reply<H, A>(&mut self, srv: &Server<H, A>, f: Fault) -> Exit {
        match f {
            Fault::Codec(e) => {
                srv.stats.malformed.add(1);
                self.out.extend_from_slice(e.reply());
                Exit::Linger
            }
            Fault::Full => {
                srv.stats.malformed.add(1);
                self.out
                    .extend_from_slice(Error::HeaderSectionTooLarge.reply());
                Exit::Linger
            }
            Fault::TimedOut => {
                srv.stats.timeouts.add(1);
                self.out.extend_from_slice(TIMEOUT_REPLY);
                Exit::Linger
            }
            Fault::Eof | Fault::Io(_) => Exit::Close,
        }
    }

    /// Queues (and for long bodies writes) a handler's response; returns whether the
    /// connection stays open.
    fn write_response(
        &mut self,
        resp: http::Response<Payload>,
        info: ReqInfo,
        keep: bool,
    ) -> Result<bool, Exit> {
        let (parts, payload) = resp.into_parts();
        let keep = keep && !wants_close(&parts.headers);
        let body = match payload.len() {
            Some(n) => ResponseBody::Length(n),
            None => ResponseBody::Chunked,
        };
        let head = ResponseHead {
            status: parts.status,
            headers: &parts.headers,
            body,
            request_version: info.version,
            keep_alive: keep,
        };
        let enc = with_date(|date| encode_response_head(&mut self.out, &head, date));
        let send_body = enc.framing != ResponseFraming::NoBody && !info.head;
        match payload {
            Payload::Bytes(b) => {
                if send_body {
                    if b.len() <= COPY_BODY_MAX {
                        self.out.extend_from_slice(&b);
                    } else {
                        self.write_two(&b).map_err(|_| Exit::Close)?;
                    }
                }
            }
            Payload::Stream { reader, .. } => {
                if send_body {
                    self.stream_body(reader, enc.framing)
                        .map_err(|_| Exit::Close)?;
                }
            }
        }
        Ok(enc.keep_alive)
    }

    /// Sends a streamed body with the framing the head announced.
    fn stream_body(
        &mut self,
        mut reader: Box<dyn Read + Send>,
        framing: ResponseFraming,
    ) -> io::Result<()> {
        let mut tmp = vec![0u8; STREAM_CHUNK];
        let mut left = match framing {
            ResponseFraming::Length(n) => n,
            _ => u64::MAX,
        };
        while left > 0 {
            let want = left.min(tmp.len() as u64) as usize;
            let n = read_guarded(&mut reader, &mut tmp[..want])?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n as u64);
            match framing {
                ResponseFraming::Chunked => {
                    encode_chunk(&mut self.out, &tmp[..n]);
                    self.flush()?;
                }
                _ => {
                    self.out.extend_from_slice(&tmp[..n]);
                    if self.out.len() >= self.cfg.write_batch {
                        self.flush()?;
                    }
                }
            }
        }
        match framing {
            ResponseFraming::Length(_) if left > 0 => {
                // The reader ended early: the framing is broken, the connection must go.
                Err(io::ErrorKind::UnexpectedEof.into())
            }
            ResponseFraming::Chunked => {
                encode_last_chunk(&mut self.out);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Writes `out` and then `body` (one vectored write when it all fits).
    fn write_two(&mut self, body: &[u8]) -> io::Result<()> {
        let mut bufs = [io::IoSlice::new(&self.out), io::IoSlice::new(body)];
        let mut slices: &mut [io::IoSlice<'_>] = &mut bufs;
        io::IoSlice::advance_slices(&mut slices, 0);
        self.stats.writes.add(1);
        while !slices.is_empty() {
            let n = (&self.stream).write_vectored(slices)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            io::IoSlice::advance_slices(&mut slices, n);
        }
        self.out.clear();
        Ok(())
    }

    /// Writes everything buffered.
    fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.stats.writes.add(1);
        let r = (&self.stream).write_all(&self.out);
        self.out.clear();
        if self.out.capacity() > 4 * self.cfg.write_batch.max(4096) {
            self.out.shrink_to(self.cfg.write_batch);
        }
        r
    }

    /// Between requests with an empty buffer: rewind, and give back a grown buffer.
    fn reset_idle(&mut self) {
        self.start = 0;
        self.end = 0;
        self.pend = (0, 0);
        let base = self.cfg.read_buffer.clamp(512, self.max_buf);
        if self.buf.len() > 2 * base {
            self.buf = vec![0; base];
        }
    }

    /// Makes room after `end`: compacts, or grows up to `max_buf`. `OutOfMemory` when
    /// the buffer is full at its bound.
    fn make_room(&mut self) -> io::Result<()> {
        if self.end < self.buf.len() {
            return Ok(());
        }
        if self.start > 0 && self.pend.0 >= self.pend.1 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.pend = (0, 0);
            return Ok(());
        }
        if self.buf.len() >= self.max_buf {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        let new_len = (self.buf.len() * 2).min(self.max_buf);
        self.buf.resize(new_len, 0);
        Ok(())
    }

    /// Flushes, then reads once (parking at most until `deadline`).
    fn read_more(&mut self, deadline: Option<Instant>) -> io::Result<usize> {
        self.flush()?;
        self.make_room()?;
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                Some(left)
            }
            None => None,
        };
        self.stream.set_read_timeout(timeout)?;
        let space = self.buf.len() - self.end;
        let n = match (&self.stream).read(&mut self.buf[self.end..]) {
            Ok(n) => n,
            Err(e) => {
                self.drained = false;
                return Err(e);
            }
        };
        self.end += n;
        self.drained = n > 0 && n < space;
        self.last_read = Instant::now();
        Ok(n)
    }

    /// One non-blocking read attempt (`WouldBlock` if nothing is there).
    fn read_now(&mut self) -> io::Result<usize> {
        self.make_room()?;
        let sock = socket2::SockRef::from(&self.stream);
        let space = self.buf.len() - self.end;
        let n = loop {
            match (&*sock).read(&mut self.buf[self.end..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.drained = false;
                    return Err(e);
                }
                Ok(n) => break n,
            }
        };
        self.end += n;
        self.drained = n > 0 && n < space;
        self.last_read = Instant::now();
        Ok(n)
    }

    /// The next piece of the current body as a range of `buf`, `None` at its end.
    fn next_body_piece(&mut self) -> Result<Option<(usize, usize)>, Fault> {
        loop {
            match self.body {
                BodyState::Done => return Ok(None),
                BodyState::Failed(f) => return Err(f),
                BodyState::Reading => {}
            }
            let base = self.start;
            let step = match self.dec.decode(&self.buf[self.start..self.end]) {
                Err(e) => Err(e),
                Ok(d) => Ok((
                    d.consumed,
                    match d.event {
                        Event::Body(b) => Some(b.len()),
                        Event::End(_) => None,
                        Event::Partial => Some(0),
                        Event::Head(_) | Event::Closed => Some(usize::MAX),
                    },
                )),
            };
            match step {
                Err(e) => self.body = BodyState::Failed(Fault::Codec(e)),
                Ok((consumed, piece)) => {
                    self.start += consumed;
                    match piece {
                        None => self.body = BodyState::Done,
                        Some(usize::MAX) => {
                            self.body = BodyState::Failed(Fault::Io(io::ErrorKind::InvalidData));
                        }
                        Some(0) => {
                            if self.continue_pending {
                                self.continue_pending = false;
                                self.out.extend_from_slice(CONTINUE_REPLY);
                            }
                            let deadline = Instant::now().checked_add(self.cfg.body_read_timeout);
                            self.body = match self.read_more(deadline) {
                                Ok(0) => BodyState::Failed(Fault::Eof),
                                Ok(_) => BodyState::Reading,
                                Err(e) => BodyState::Failed(match e.kind() {
                                    io::ErrorKind::TimedOut => Fault::TimedOut,
                                    io::ErrorKind::OutOfMemory => Fault::Full,
                                    k => Fault::Io(k),
                                }),
                            };
                        }
                        Some(len) => {
                            let end = base + consumed;
                            return Ok(Some((end - len, end)));
                        }
                    }
                }
            }
        }
    }

    /// `Read` for the handler's [`Body`].
    pub(crate) fn read_body(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pend.0 >= self.pend.1 {
            match self.next_body_piece() {
                Ok(Some(r)) => self.pend = r,
                Ok(None) => return Ok(0),
                Err(f) => return Err(f.to_io()),
            }
        }
        let (a, b) = self.pend;
        let n = (b - a).min(out.len());
        out[..n].copy_from_slice(&self.buf[a..a + n]);
        self.pend.0 += n;
        Ok(n)
    }

    /// Discards the rest of the body, at most `limit` bytes: `Ok(true)` at its end,
    /// `Ok(false)` if more remains.
    fn drain(&mut self, limit: u64) -> Result<bool, Fault> {
        let mut left = limit;
        loop {
            match self.next_body_piece()? {
                None => return Ok(true),
                Some((a, b)) => {
                    let n = (b - a) as u64;
                    if n > left {
                        return Ok(false);
                    }
                    left -= n;
                }
            }
        }
    }
}

/// Whether a refused request can keep its connection, and what is left to skip.
/// `buffered`: the bytes after its head already read.
fn refusal_skip<A: Admission>(
    cfg: &ServerConfig,
    admission: &A,
    req: &crate::Request<'_>,
    buffered: u64,
) -> Option<Skip> {
    if !cfg.keep_alive_rejections || !req.keep_alive() {
        return None;
    }
    // A chunked body has no bound we could check before reading it.
    let Framing::Length(body) = req.framing() else {
        return None;
    };
    if body > cfg.drain_limit {
        return None;
    }
    if req.expect_continue() && body > buffered {
        // The client may wait for a `100 Continue` we will not send, or send the body
        // anyway: we cannot tell which, so the connection goes.
        return None;
    }
    if !admission.keep_alive_after_refusal() {
        return None;
    }
    Some(Skip {
        version: req.version(),
        body,
    })
}

/// Reads from a handler's stream, turning a panic into an error.
fn read_guarded(reader: &mut Box<dyn Read + Send>, buf: &mut [u8]) -> io::Result<usize> {
    match panic::catch_unwind(AssertUnwindSafe(|| loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r,
        }
    })) {
        Ok(r) => r,
        Err(p) if anon_fiber::is_cancellation(&*p) => panic::resume_unwind(p),
        Err(_) => Err(io::Error::other("response body reader panicked")),
    }
}

/// `Connection: close` among the handler's headers.
fn wants_close(headers: &http::HeaderMap) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

/// The head as `http` request parts; `None` if the `http` crate refuses a piece.
fn to_parts(req: &crate::Request<'_>) -> Option<http::request::Parts> {
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = Method::from_bytes(req.method().as_bytes()).ok()?;
    parts.uri = Uri::try_from(req.target()).ok()?;
    parts.version = match req.version() {
        Version::Http10 => http::Version::HTTP_10,
        Version::Http11 => http::Version::HTTP_11,
    };
    let headers = req.headers();
    parts.headers.reserve(headers.len());
    for h in headers {
        let name = HeaderName::from_bytes(h.name_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value()).ok()?;
        parts.headers.append(name, value);
    }
    Some(parts)
}

/// Appends an empty-bodied reply with `status` (and `Retry-After`); returns whether the
/// connection stays open. Renders into `out` without a `HeaderMap` (no allocation once
/// `out` has room).
fn status_reply(
    out: &mut Vec<u8>,
    status: StatusCode,
    retry_after: Option<u64>,
    version: Version,
    keep: bool,
) -> bool {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    with_date(|d| out.extend_from_slice(d.value()));
    out.extend_from_slice(b"\r\n");
    if let Some(secs) = retry_after {
        out.extend_from_slice(b"Retry-After: ");
        out.extend_from_slice(itoa::Buffer::new().format(secs).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n");
    if !keep {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    keep
}

/// The admission refusal, closing or keeping the connection: a constant reply for the
/// usual one second (and, when it keeps the connection, HTTP/1.1), else the same reply
/// rendered with its own `Retry-After` (and HTTP/1.0's `Connection: keep-alive`).
fn overload_reply(out: &mut Vec<u8>, again: Again, version: Version, keep: bool) {
    let secs = again.retry_after_secs();
    match (secs, keep, version) {
        (1, false, _) => out.extend_from_slice(OVERLOAD_REPLY),
        (1, true, Version::Http11) => out.extend_from_slice(OVERLOAD_KEEP_ALIVE_REPLY),
        _ => {
            status_reply(
                out,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(secs),
                version,
                keep,
            );
        }
    }
}

/// Serves `stream` on the calling fiber, then hibernates or closes it.
pub(crate) fn serve<H: Handler, A: Admission>(
    srv: &Arc<Server<H, A>>,
    stream: TcpStream,
    start: Start,
) {
    serve_from(srv, stream, start, &[], Instant::now());
}

/// [`serve`] with `first` already read from the stream (at most [`FIRST_READ`] bytes).
fn serve_from<H: Handler, A: Admission>(
    srv: &Arc<Server<H, A>>,
    stream: TcpStream,
    start: Start,
    first: &[u8],
    read_at: Instant,
) {
    let cfg = srv.config;
    let _ = stream.set_write_timeout(Some(nonzero(cfg.write_timeout)));
    let mut conn = Conn::new(stream, cfg, Arc::clone(&srv.stats));
    conn.preload(first, read_at);
    let exit = conn.run(srv, start);
    let Conn { stream, .. } = conn;
    match exit {
        Exit::Hibernate => hibernate(srv, stream, Wait::Idle),
        Exit::Close => {
            srv.stats.connections.sub(1);
            drop(stream);
        }
        Exit::Linger => {
            srv.stats.connections.sub(1);
            linger(stream, cfg.linger);
        }
    }
}

fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// Counts a hibernating connection and undoes the count however the wait ends
/// (callback run, or dropped with the runtime).
struct Hibernating<H: Handler, A: Admission> {
    srv: Arc<Server<H, A>>,
}

impl<H: Handler, A: Admission> Drop for Hibernating<H, A> {
    fn drop(&mut self) {
        self.srv.stats.hibernating.sub(1);
    }
}

/// A connection on its way to a fiber. If it is dropped before the fiber takes it (the
/// fiber limit is reached, or the runtime shuts down), the client gets the overload
/// reply instead of a silent close.
struct Pending<H: Handler, A: Admission> {
    srv: Arc<Server<H, A>>,
    stream: Option<TcpStream>,
}

impl<H: Handler, A: Admission> Drop for Pending<H, A> {
    fn drop(&mut self) {
        if let Some(s) = self.stream.take() {
            self.srv.stats.rejected.add(1);
            self.srv.stats.connections.sub(1);
            let mut budget = LINGER_BYTES;
            let _ = drain_now(&s, &mut budget);
            let sock = socket2::SockRef::from(&s);
            let _ = sock.send(OVERLOAD_REPLY);
            linger(s, self.srv.config.linger);
        }
    }
}

/// Parks `stream` in the worker's reactor with no fiber until it is readable.
pub(crate) fn hibernate<H: Handler, A: Admission>(
    srv: &Arc<Server<H, A>>,
    stream: TcpStream,
    wait: Wait,
) {
    let timeout = match wait {
        Wait::FirstRequest(t) => srv
            .config
            .head_timeout
            .saturating_sub(t.elapsed())
            .max(Duration::from_millis(1)),
        Wait::Idle => nonzero(srv.config.idle_timeout),
    };
    srv.stats.hibernating.add(1);
    let guard = Hibernating {
        srv: Arc::clone(srv),
    };
    // Only connections idle between requests may be shed; a fresh one is awaited.
    let idle_key = match wait {
        Wait::Idle => super::idle::push(),
        Wait::FirstRequest(_) => None,
    };
    let r = stream.on_readable(Some(timeout), move |s, why| {
        if let Some(k) = idle_key {
            super::idle::remove(k);
        }
        let srv = Arc::clone(&guard.srv);
        drop(guard);
        match why {
            Awakened::Shed => {
                // Idle between requests: nothing to answer, just give the descriptor back.
                srv.stats.connections.sub(1);
                srv.stats.shed.add(1);
                drop(s);
            }
            Awakened::Readable => wake(&srv, s, wait),
            Awakened::TimedOut => {
                srv.stats.connections.sub(1);
                if let Wait::FirstRequest(_) = wait {
                    srv.stats.timeouts.add(1);
                    let _ = socket2::SockRef::from(&s).send(TIMEOUT_REPLY);
                    linger(s, srv.config.linger);
                }
            }
        }
    });
    match r {
        Ok(h) => {
            if let Some(k) = idle_key {
                super::idle::attach(k, h);
            }
        }
        Err(e) => {
            // The callback (and the guard with it) was dropped; the stream closes here.
            if let Some(k) = idle_key {
                super::idle::remove(k);
            }
            srv.stats.connections.sub(1);
            drop(e.into_inner());
        }
    }
}

/// Bytes a woken connection reads in the reactor callback, before it has a fiber.
const FIRST_READ: usize = 2048;

thread_local! {
    /// The worker's buffer for that first read (the callback runs on the worker thread,
    /// outside any fiber; only the bytes read are copied out).
    static FIRST: RefCell<[u8; FIRST_READ]> = const { RefCell::new([0; FIRST_READ]) };
}

/// A hibernating connection has bytes: read them here, in the reactor callback; refuse
/// the request at once when admission is saturated and says no ([`refuse_now`]), else
/// give the connection a fiber that starts with those bytes.
fn wake<H: Handler, A: Admission>(srv: &Arc<Server<H, A>>, stream: TcpStream, wait: Wait) {
    let start = match wait {
        Wait::FirstRequest(t) => Start::Fresh(t),
        Wait::Idle => Start::Resumed,
    };
    let read = FIRST.with(|first| {
        let mut first = first.borrow_mut();
        loop {
            match (&*socket2::SockRef::from(&stream)).read(&mut first[..]) {
                Ok(0) => return None,
                Ok(n) => {
                    let read_at = Instant::now();
                    if let Wait::Idle = wait {
                        if refuse_now(srv, &stream, &first[..n], read_at) {
                            return Some(None);
                        }
                    }
                    return Some(Some((first[..n].to_vec(), read_at)));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A spurious edge: wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Some(Some((Vec::new(), Instant::now())))
                }
                Err(_) => return None,
            }
        }
    });
    let first = match read {
        // End of stream or a failed socket.
        None => {
            srv.stats.connections.sub(1);
            return;
        }
        // Refused in place: wait for the next request.
        Some(None) => {
            hibernate(srv, stream, Wait::Idle);
            return;
        }
        Some(Some((v, _))) if v.is_empty() => {
            hibernate(srv, stream, wait);
            return;
        }
        Some(Some(v)) => v,
    };
    let (first, read_at) = first;
    let mut pending = Pending {
        srv: Arc::clone(srv),
        stream: Some(stream),
    };
    // On `Err` the closure, and with it `pending`, is dropped: the overload reply.
    let _ = anon_fiber::spawn(move || {
        if let Some(s) = pending.stream.take() {
            serve_from(&pending.srv, s, start, &first, read_at);
        }
    });
}

/// The refusal without a fiber: when `bytes` (all that was read) are exactly one complete
/// bodiless keep-alive request head that admission refuses early
/// ([`Admission::refuse_early`]), writes the `503` (keep-alive) and returns `true`: the
/// connection goes back to hibernation. Anything else (a body, pipelined bytes, a partial
/// or malformed head, no early refusal, a refusal that must close) returns `false` and the
/// fiber handles the bytes as usual.
fn refuse_now<H: Handler, A: Admission>(
    srv: &Server<H, A>,
    stream: &TcpStream,
    bytes: &[u8],
    read_at: Instant,
) -> bool {
    if !srv.config.keep_alive_rejections || !srv.admission.keep_alive_after_refusal() {
        return false;
    }
    let mut dec = MessageDecoder::new(srv.config.codec);
    let Ok(d) = dec.decode(bytes) else {
        return false;
    };
    let Event::Head(req) = d.event else {
        return false;
    };
    if d.consumed != bytes.len()
        || req.framing() != Framing::Length(0)
        || !req.keep_alive()
        || req.version() != Version::Http11
    {
        return false;
    }
    let Some(again) = srv.admission.refuse_early(&req, read_at) else {
        return false;
    };
    srv.stats.rejected.add(1);
    let mut reply = Vec::new();
    let reply = if again.retry_after_secs() == 1 {
        OVERLOAD_KEEP_ALIVE_REPLY
    } else {
        overload_reply(&mut reply, again, Version::Http11, true);
        &reply[..]
    };
    // One write into an idle connection's empty send buffer; if even that is short (the
    // client reads nothing) or fails, the connection goes.
    let sent = (&*socket2::SockRef::from(stream)).write(reply);
    if !matches!(sent, Ok(n) if n == reply.len()) {
        let _ = stream.shutdown(Shutdown::Both);
    }
    true
}

/// Outcome of a non-blocking drain.
enum Drained {
    /// Nothing more to read now.
    WouldBlock,
    /// End of stream, an error, or the byte budget spent: stop lingering.
    Stop,
}

/// Reads and discards what is readable now, within `budget`.
fn drain_now(stream: &TcpStream, budget: &mut usize) -> Drained {
    let sock = socket2::SockRef::from(stream);
    let mut tmp = [0u8; 4096];
    loop {
        match (&*sock).read(&mut tmp) {
            Ok(0) => return Drained::Stop,
            Ok(n) => {
                if n >= *budget {
                    return Drained::Stop;
                }
                *budget -= n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::WouldBlock,
            Err(_) => return Drained::Stop,
        }
    }
}

/// Closes our half, then reads and discards input until the peer closes, `period`
/// passes or [`LINGER_BYTES`] were read, so that the last reply is not destroyed by a
/// reset. On worker threads it waits without a fiber.
pub(crate) fn linger(stream: TcpStream, period: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    if period.is_zero() {
        return;
    }
    if let Some(deadline) = Instant::now().checked_add(period) {
        linger_until(stream, deadline, LINGER_BYTES);
    }
}

fn linger_until(stream: TcpStream, deadline: Instant, mut budget: usize) {
    if let Drained::Stop = drain_now(&stream, &mut budget) {
        return;
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return;
    }
    if anon_fiber::worker_index().is_some() {
        let _ = stream.on_readable(Some(left), move |s, why| {
            if why == Awakened::Readable {
                linger_until(s, deadline, budget);
            }
        });
    } else {
        // A plain thread: wait in the socket's own blocking read.
        let mut tmp = [0u8; 4096];
        while budget > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match (&stream).read(&mut tmp) {
                Ok(n) if n > 0 && n < budget => budget -= n,
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_tokens_are_found_in_lists() {
        let mut h = http::HeaderMap::new();
        assert!(!wants_close(&h));
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade, Close"));
        assert!(wants_close(&h));
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        assert!(!wants_close(&h));
    }

    #[test]
    fn status_reply_renders_retry_after_and_connection() {
        let mut out = Vec::new();
        let keep = status_reply(
            &mut out,
            StatusCode::SERVICE_UNAVAILABLE,
            Some(3),
            Version::Http10,
            true,
        );
        assert!(keep);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("HTTP/1.1 503 Service Unavailable\r\nDate: "),
            "{s}"
        );
        assert!(s.ends_with(
            "\r\nRetry-After: 3\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        ));
    }

    #[test]
    fn overload_reply_is_the_constant_for_one_second() {
        let mut out = Vec::new();
        overload_reply(&mut out, Again::DEFAULT, Version::Http11, false);
        assert_eq!(out, OVERLOAD_REPLY);
        out.clear();
        overload_reply(&mut out, Again::DEFAULT, Version::Http10, false);
        assert_eq!(out, OVERLOAD_REPLY);
        out.clear();
        overload_reply(&mut out, Again::DEFAULT, Version::Http11, true);
        assert_eq!(out, OVERLOAD_KEEP_ALIVE_REPLY);
        out.clear();
        let five = Again::after(Duration::from_secs(5));
        overload_reply(&mut out, five, Version::Http11, false);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("\r\nRetry-After: 5\r\n") && s.contains("Connection: close"));
        let mut out = Vec::new();
        overload_reply(&mut out, five, Version::Http11, true);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("\r\nRetry-After: 5\r\n") && !s.contains("Connection:"));
        let mut out = Vec::new();
        overload_reply(&mut out, Again::DEFAULT, Version::Http10, true);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("\r\nRetry-After: 1\r\n") && s.contains("Connection: keep-alive"));
    }

    #[test]
    fn the_keep_alive_overload_reply_differs_only_by_connection_close() {
        let closing = std::str::from_utf8(OVERLOAD_REPLY).unwrap();
        let keeping = std::str::from_utf8(OVERLOAD_KEEP_ALIVE_REPLY).unwrap();
        assert_eq!(closing.replace("Connection: close\r\n", ""), keeping);
    }

    /// `next_body_piece` finds body bytes in the buffer as the last `len` bytes of what
    /// the decoder consumed; this holds for both framings.
    #[test]
    fn body_pieces_end_where_the_decoder_stopped_consuming() {
        for raw in [
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabcdef"[..],
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;e=1\r\nab\r\n4\r\ncdef\r\n0\r\n\r\n",
        ] {
            let mut dec = MessageDecoder::new(crate::Config::default());
            let mut pos = 0;
            let mut body = Vec::new();
            loop {
                let d = dec.decode(&raw[pos..]).unwrap();
                let end = pos + d.consumed;
                match d.event {
                    Event::Body(b) => {
                        assert_eq!(b, &raw[end - b.len()..end]);
                        body.extend_from_slice(b);
                    }
                    Event::End(_) => break,
                    Event::Head(_) | Event::Partial => {}
                    Event::Closed => panic!("closed"),
                }
                pos = end;
            }
            assert_eq!(body, b"abcdef");
        }
    }

    #[test]
    fn targets_of_every_form_become_uris() {
        let cfg = crate::Config::default();
        for (raw, uri) in [
            ("GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n", "/a?b"),
            ("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "*"),
            ("CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", "x:443"),
            ("GET http://x/p HTTP/1.1\r\nHost: x\r\n\r\n", "http://x/p"),
        ] {
            let mut slots = [crate::HeaderSlot::EMPTY; 4];
            let crate::Status::Complete(req) =
                crate::parse_request(raw.as_bytes(), &cfg, &mut slots).unwrap()
            else {
                panic!("complete head expected");
            };
            let parts = to_parts(&req).expect(raw);
            assert_eq!(parts.uri.to_string(), uri);
            assert_eq!(parts.headers.len(), 1);
        }
    }
}
