//! The chunked transfer coding (RFC 9112 §7.1): an incremental decoder that accepts its
//! input split anywhere, and the trailer section that ends it.

use super::chars::{hex_value, is_ws, scan_class, scan_to_ctl, trim_ows, TOKEN};
use super::head::Header;
use super::{Config, Error};

/// Most hex digits in a chunk size (leading zeros included): 16 digits fill a `u64`.
pub const MAX_CHUNK_SIZE_DIGITS: u8 = 16;

/// One step of chunked decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'b> {
    /// Body bytes (a piece of a chunk's data; never empty).
    Data(&'b [u8]),
    /// Every byte that could be used was consumed; call again with more.
    Partial,
    /// The last chunk and the trailer section were read: the body is complete.
    End(Trailers<'b>),
}

/// Where a chunk-extension parse stands (RFC 9112 §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// After `;`: BWS, then a name.
    BeforeName,
    Name,
    /// BWS after a name: `=` or `;` must follow.
    AfterName,
    /// After `=`: BWS, then a token or a quoted string.
    BeforeValue,
    Token,
    Quoted,
    Escape,
    /// After a closing quote.
    AfterQuoted,
    /// BWS after a value: `;` must follow.
    AfterValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits.
    Size,
    /// Whitespace after the size: an extension (`;`) must follow.
    SizeWs,
    Ext(Ext),
    /// CR of a chunk line seen: LF must follow.
    LineLf,
    /// This many data bytes remain in the current chunk.
    Data(u64),
    /// After chunk data: CR LF must follow.
    DataCr,
    DataLf,
    /// After the last chunk: the trailer section (kept unconsumed until complete).
    Trailers,
    Done,
    Failed(Error),
}

/// Incremental, sans-IO decoder of a chunked body.
///
/// Feed it the unconsumed bytes; each call consumes some, and says what they were. Chunk
/// lines are parsed byte by byte, so any split of the input gives the same data, the
/// same end and the same error. The trailer section is kept unconsumed until it is
/// complete (bounded by `Limits::max_trailer_section`), so that it can be returned as one
/// borrowed [`Trailers`].
///
/// ```
/// use anon_http::{Chunk, ChunkedDecoder, Config};
///
/// let mut dec = ChunkedDecoder::new(&Config::default());
/// let input = b"5\r\nhello\r\n0\r\n\r\n";
/// let (n, chunk) = dec.decode(input)?;
/// assert_eq!(chunk, Chunk::Data(b"hello"));
/// let (m, chunk) = dec.decode(&input[n..])?;
/// assert!(matches!(chunk, Chunk::End(t) if t.is_empty()));
/// assert_eq!(n + m, input.len());
/// # Ok::<(), anon_http::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    digits: u8,
    ext_len: usize,
    total: u64,
    /// Trailer bytes already searched for an LF without finding the section's end.
    scanned: usize,
    max_body: u64,
    max_ext: usize,
    max_trailers: usize,
    bare_lf: bool,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body, with `config`'s limits and switches.
    pub fn new(config: &Config) -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
            ext_len: 0,
            total: 0,
            scanned: 0,
            max_body: config.limits.max_body,
            max_ext: config.limits.max_chunk_extension,
            max_trailers: config.limits.trailer_section(),
            bare_lf: config.leniency.allow_bare_lf,
        }
    }

    /// Back to the start of a chunked body, keeping the limits and switches.
    pub fn reset(&mut self) {
        self.state = State::Size;
        self.size = 0;
        self.digits = 0;
        self.ext_len = 0;
        self.total = 0;
        self.scanned = 0;
    }

    /// `true` once the last chunk and the trailers were decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Total body bytes announced by the chunk sizes so far.
    pub fn body_len(&self) -> u64 {
        self.total
    }

    /// Decodes from the start of `buf` (the bytes not consumed so far). Returns how many
    /// bytes were consumed and what they held. After an error the decoder stays failed;
    /// after [`Chunk::End`] it returns `End` again, consuming nothing.
    pub fn decode<'b>(&mut self, buf: &'b [u8]) -> Result<(usize, Chunk<'b>), Error> {
        match self.run(buf) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    fn run<'b>(&mut self, buf: &'b [u8]) -> Result<(usize, Chunk<'b>), Error> {
        let mut i = 0;
        loop {
            match self.state {
                State::Data(rem) => {
                    let avail = buf.len() - i;
                    if avail == 0 {
                        return Ok((i, Chunk::Partial));
                    }
                    let n = rem.min(avail as u64) as usize;
                    self.state = if n as u64 == rem {
                        State::DataCr
                    } else {
                        State::Data(rem - n as u64)
                    };
                    return Ok((i + n, Chunk::Data(&buf[i..i + n])));
                }
                State::Trailers => return self.trailers(buf, i),
                State::Done => return Ok((i, Chunk::End(Trailers::EMPTY))),
                State::Failed(e) => return Err(e),
                _ => {}
            }
            let Some(&b) = buf.get(i) else {
                return Ok((i, Chunk::Partial));
            };
            i += 1;
            self.step(b)?;
        }
    }

    /// Advances the chunk-line state machine by one byte.
    fn step(&mut self, b: u8) -> Result<(), Error> {
        match self.state {
            State::Size => {
                if let Some(d) = hex_value(b) {
                    if self.digits == MAX_CHUNK_SIZE_DIGITS {
                        return Err(Error::ChunkSizeTooLong);
                    }
                    self.digits += 1;
                    self.size = (self.size << 4) | u64::from(d);
                    return Ok(());
                }
                if self.digits == 0 {
                    return Err(Error::InvalidChunkSize);
                }
                match b {
                    b';' => self.ext_byte(Ext::BeforeName)?,
                    b' ' | b'\t' => {
                        self.count_ext()?;
                        self.state = State::SizeWs;
                    }
                    b'\r' => self.state = State::LineLf,
                    b'\n' => self.line_lf()?,
                    _ => return Err(Error::InvalidChunkSize),
                }
            }
            State::SizeWs => match b {
                b' ' | b'\t' => self.count_ext()?,
                b';' => self.ext_byte(Ext::BeforeName)?,
                _ => return Err(Error::InvalidChunkExtension),
            },
            State::Ext(e) => self.ext(e, b)?,
            State::LineLf => {
                if b != b'\n' {
                    return Err(Error::BareCarriageReturn);
                }
                self.line_done()?;
            }
            State::DataCr => match b {
                b'\r' => self.state = State::DataLf,
                b'\n' if self.bare_lf => self.next_chunk(),
                b'\n' => return Err(Error::BareLineFeed),
                _ => return Err(Error::InvalidChunkDelimiter),
            },
            State::DataLf => {
                if b != b'\n' {
                    return Err(Error::BareCarriageReturn);
                }
                self.next_chunk();
            }
            // Handled by `run`.
            State::Data(_) | State::Trailers | State::Done | State::Failed(_) => {}
        }
        Ok(())
    }

    /// Counts one more extension byte (whitespace after the size included) against the
    /// limit.
    fn count_ext(&mut self) -> Result<(), Error> {
        self.ext_len += 1;
        if self.ext_len > self.max_ext {
            return Err(Error::ChunkExtensionTooLong);
        }
        Ok(())
    }

    /// Counts one more extension byte and moves to `next`.
    fn ext_byte(&mut self, next: Ext) -> Result<(), Error> {
        self.count_ext()?;
        self.state = State::Ext(next);
        Ok(())
    }

    fn ext(&mut self, e: Ext, b: u8) -> Result<(), Error> {
        let tchar = TOKEN[b as usize];
        let next = match (e, b) {
            (Ext::BeforeName, b' ' | b'\t') => Ext::BeforeName,
            (Ext::BeforeName, _) if tchar => Ext::Name,
            (Ext::Name, _) if tchar => Ext::Name,
            (Ext::Name | Ext::AfterName, b' ' | b'\t') => Ext::AfterName,
            (Ext::Name | Ext::AfterName, b'=') => Ext::BeforeValue,
            (
                Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterQuoted | Ext::AfterValue,
                b';',
            ) => Ext::BeforeName,
            (Ext::BeforeValue, b' ' | b'\t') => Ext::BeforeValue,
            (Ext::BeforeValue, b'"') => Ext::Quoted,
            (Ext::BeforeValue | Ext::Token, _) if tchar => Ext::Token,
            (Ext::Token | Ext::AfterQuoted | Ext::AfterValue, b' ' | b'\t') => Ext::AfterValue,
            (Ext::Quoted, b'"') => Ext::AfterQuoted,
            (Ext::Quoted, b'\\') => Ext::Escape,
            (Ext::Quoted, _) if b == b'\t' || (b >= 0x20 && b != 0x7F) => Ext::Quoted,
            (Ext::Escape, _) if b == b'\t' || (b >= 0x20 && b != 0x7F) => Ext::Quoted,
            // A line may end after a name or a value, not after whitespace or inside a
            // quoted string.
            (Ext::Name | Ext::Token | Ext::AfterQuoted, b'\r') => {
                self.state = State::LineLf;
                return Ok(());
            }
            (Ext::Name | Ext::Token | Ext::AfterQuoted, b'\n') => return self.line_lf(),
            _ => return Err(Error::InvalidChunkExtension),
        };
        self.ext_byte(next)
    }

    /// A bare LF ends a chunk line only if allowed.
    fn line_lf(&mut self) -> Result<(), Error> {
        if !self.bare_lf {
            return Err(Error::BareLineFeed);
        }
        self.line_done()
    }

    fn line_done(&mut self) -> Result<(), Error> {
        if self.size == 0 {
            self.state = State::Trailers;
            self.scanned = 0;
            return Ok(());
        }
        if self.size > self.max_body - self.total.min(self.max_body) {
            return Err(Error::PayloadTooLarge);
        }
        self.total += self.size;
        self.state = State::Data(self.size);
        Ok(())
    }

    fn next_chunk(&mut self) {
        self.state = State::Size;
        self.size = 0;
        self.digits = 0;
        self.ext_len = 0;
    }

    fn trailers<'b>(&mut self, buf: &'b [u8], i: usize) -> Result<(usize, Chunk<'b>), Error> {
        let section = &buf[i..];
        let fresh = section.get(self.scanned..).unwrap_or_default();
        // Nothing can change without a new line end or reaching the limit (see
        // `parse_fields`), so skip the re-parse: this keeps byte-at-a-time input linear.
        if memchr::memchr(b'\n', fresh).is_none() && section.len() < self.max_trailers {
            self.scanned = section.len();
            return Ok((i, Chunk::Partial));
        }
        match parse_fields(section, self.max_trailers, self.bare_lf)? {
            Some(len) => {
                self.state = State::Done;
                Ok((
                    i + len,
                    Chunk::End(Trailers {
                        raw: &section[..len],
                    }),
                ))
            }
            None => {
                self.scanned = section.len();
                Ok((i, Chunk::Partial))
            }
        }
    }
}

/// Validates field lines up to and including the empty line that ends them; returns the
/// length, or `None` for "need more". Errors are reported only once an LF follows them or
/// the window of `max` bytes is full, so any split of the input gives the same answer.
fn parse_fields(buf: &[u8], max: usize, bare_lf: bool) -> Result<Option<usize>, Error> {
    let win = &buf[..buf.len().min(max)];
    let at_limit = win.len() == max;
    let fail = |at: usize, e: Error| -> Result<Option<usize>, Error> {
        if at_limit || memchr::memchr(b'\n', win.get(at..).unwrap_or_default()).is_some() {
            Err(e)
        } else {
            Ok(None)
        }
    };
    let cut = || {
        if at_limit {
            Err(Error::TrailerSectionTooLarge)
        } else {
            Ok(None)
        }
    };
    let mut pos = 0;
    loop {
        match win.get(pos) {
            Some(b'\r') => {
                return match win.get(pos + 1) {
                    Some(b'\n') => Ok(Some(pos + 2)),
                    Some(_) => fail(pos, Error::BareCarriageReturn),
                    None => cut(),
                }
            }
            Some(b'\n') if bare_lf => return Ok(Some(pos + 1)),
            Some(b'\n') => return fail(pos, Error::BareLineFeed),
            Some(b' ' | b'\t') => return fail(pos, Error::ObsFold),
            Some(_) => {}
            None => return cut(),
        }
        let name_end = scan_class(&TOKEN, win, pos);
        match win.get(name_end) {
            Some(b':') if name_end > pos => {}
            Some(b' ' | b'\t') if name_end > pos => {
                return fail(name_end, Error::WhitespaceBeforeColon)
            }
            Some(b'\r' | b'\n') if name_end > pos => return fail(name_end, Error::MissingColon),
            Some(_) => return fail(name_end, Error::InvalidHeaderName),
            None => return cut(),
        }
        pos = name_end + 1;
        loop {
            pos = scan_to_ctl(win, pos);
            match win.get(pos) {
                Some(b'\t') => pos += 1,
                Some(b'\r') => match win.get(pos + 1) {
                    Some(b'\n') => {
                        pos += 2;
                        break;
                    }
                    Some(_) => return fail(pos, Error::BareCarriageReturn),
                    None => return cut(),
                },
                Some(b'\n') if bare_lf => {
                    pos += 1;
                    break;
                }
                Some(b'\n') => return fail(pos, Error::BareLineFeed),
                Some(_) => return fail(pos, Error::InvalidHeaderValue),
                None => return cut(),
            }
        }
    }
}

/// The trailer section of a chunked body: validated field lines, borrowed raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailers<'b> {
    raw: &'b [u8],
}

impl<'b> Trailers<'b> {
    /// No trailer fields.
    pub const EMPTY: Trailers<'static> = Trailers { raw: b"" };

    /// `true` if there is no trailer field.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The trailer fields in the order received (names and OWS-trimmed values).
    pub fn iter(&self) -> TrailerIter<'b> {
        TrailerIter { rest: self.raw }
    }
}

/// Iterator over trailer fields.
#[derive(Debug, Clone)]
pub struct TrailerIter<'b> {
    rest: &'b [u8],
}

impl<'b> Iterator for TrailerIter<'b> {
    type Item = Header<'b>;

    fn next(&mut self) -> Option<Header<'b>> {
        let nl = memchr::memchr(b'\n', self.rest)?;
        let line = &self.rest[..nl];
        self.rest = &self.rest[nl + 1..];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = memchr::memchr(b':', line)?;
        let value = trim_ows(&line[colon + 1..]);
        debug_assert!(!line[..colon].iter().any(|&b| is_ws(b)));
        Some(Header::new(&line[..colon], value))
    }
}
