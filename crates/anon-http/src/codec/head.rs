//! Request head parsing: request line, field lines, and the framing decision of RFC 9112
//! §6, into borrowed views of the caller's buffer.

use super::chars::{
    eq_token_ci, hex_value, is_ws, scan_class, scan_to_ctl, trim_ows, HOST, PLAIN_HOST, TARGET,
    TOKEN,
};
use super::{Config, Error, Status};

/// The HTTP version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Exactly this many bytes follow the head (0 when neither `Content-Length` nor
    /// `Transfer-Encoding` is present).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The form of a request target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetForm {
    /// `/path?query`.
    Origin,
    /// `scheme://authority/path?query`; the authority replaces `Host` (RFC 9112 §3.2.2).
    Absolute,
    /// `host:port`, only with CONNECT.
    Authority,
    /// `*`, only with OPTIONS.
    Asterisk,
}

/// Where one header field lies in the parsed buffer: the storage [`parse_request`] fills.
/// Opaque; create arrays of them with [`HeaderSlot::EMPTY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderSlot {
    name_start: u32,
    name_end: u32,
    value_start: u32,
    value_end: u32,
}

impl HeaderSlot {
    /// An unused slot.
    pub const EMPTY: HeaderSlot = HeaderSlot {
        name_start: 0,
        name_end: 0,
        value_start: 0,
        value_end: 0,
    };
}

/// One header field: a borrowed name (a validated token) and value (OWS trimmed, no
/// control byte but HTAB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'b> {
    name: &'b [u8],
    value: &'b [u8],
}

impl<'b> Header<'b> {
    /// A header from raw parts, as a trailer iterator or a test builds one.
    pub(crate) fn new(name: &'b [u8], value: &'b [u8]) -> Self {
        Header { name, value }
    }

    /// The field name as sent (token characters only, so always valid ASCII).
    pub fn name(&self) -> &'b str {
        std::str::from_utf8(self.name).unwrap_or_default()
    }

    /// The field name's bytes.
    pub fn name_bytes(&self) -> &'b [u8] {
        self.name
    }

    /// The field value without leading or trailing whitespace. It may hold obs-text
    /// (bytes 0x80..=0xFF), so it is bytes, not `str`.
    pub fn value(&self) -> &'b [u8] {
        self.value
    }

    /// `true` if the name equals `name` ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// A parsed request head, borrowing the buffer it was parsed from.
#[derive(Debug, Clone, Copy)]
pub struct Request<'b> {
    buf: &'b [u8],
    slots: &'b [HeaderSlot],
    // Positions, not slices: a smaller `Request` is cheaper to move out of the parser.
    method: Span,
    target: Span,
    /// The absolute-form authority, else the `Host` value; `Span::NONE` for neither.
    host: Span,
    framing: Framing,
    head_len: u32,
    form: TargetForm,
    version: Version,
    keep_alive: bool,
    expect_continue: bool,
}

/// A byte range `start..end` of the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const NONE: Span = Span {
        start: u32::MAX,
        end: u32::MAX,
    };

    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    fn of(self, buf: &[u8]) -> Option<&[u8]> {
        buf.get(self.start as usize..self.end as usize)
    }
}

impl<'b> Request<'b> {
    /// The method (a token; case-sensitive, so `get` is not `GET`).
    pub fn method(&self) -> &'b str {
        std::str::from_utf8(self.method.of(self.buf).unwrap_or_default()).unwrap_or_default()
    }

    /// The request target exactly as sent (ASCII only).
    pub fn target(&self) -> &'b str {
        std::str::from_utf8(self.target.of(self.buf).unwrap_or_default()).unwrap_or_default()
    }

    /// The request target's form.
    pub fn target_form(&self) -> TargetForm {
        self.form
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields in the order received.
    pub fn headers(&self) -> Headers<'b> {
        Headers {
            buf: self.buf,
            slots: self.slots.iter(),
        }
    }

    /// The value of the first field named `name` (ignoring ASCII case).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers().find(|h| h.is(name)).map(|h| h.value())
    }

    /// The authority the request is for: the absolute-form target's authority if there
    /// is one (RFC 9112 §3.2.2), else the `Host` value; `None` for an HTTP/1.0 request
    /// without `Host`.
    pub fn host(&self) -> Option<&'b [u8]> {
        self.host.of(self.buf)
    }

    /// How the body is delimited.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether the connection may carry another request after this one: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive` (and no `close`).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// `Expect: 100-continue` on an HTTP/1.1 request: the client waits for an interim
    /// `100 Continue` (or a final answer) before sending the body. HTTP/1.0 expectations
    /// are ignored (RFC 9110 §10.1.1).
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }

    /// The length of the head in bytes (request line through the empty line): the body,
    /// or the next request, starts at this offset.
    pub fn head_len(&self) -> usize {
        self.head_len as usize
    }
}

/// Iterator over a request's header fields.
#[derive(Debug, Clone)]
pub struct Headers<'b> {
    buf: &'b [u8],
    slots: std::slice::Iter<'b, HeaderSlot>,
}

impl<'b> Iterator for Headers<'b> {
    type Item = Header<'b>;

    fn next(&mut self) -> Option<Header<'b>> {
        let s = self.slots.next()?;
        let name = self
            .buf
            .get(s.name_start as usize..s.name_end as usize)
            .unwrap_or_default();
        let value = self
            .buf
            .get(s.value_start as usize..s.value_end as usize)
            .unwrap_or_default();
        Some(Header { name, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.slots.size_hint()
    }
}

impl ExactSizeIterator for Headers<'_> {}

pub(crate) type HeadResult<'b> = Result<Status<Request<'b>>, Error>;

/// Parses a request head from the start of `buf`.
///
/// Returns [`Status::Complete`] with the request (its [`Request::head_len`] says where
/// the body starts), [`Status::Partial`] if `buf` holds no complete head yet, or the
/// rule broken. Header fields go into `slots`; more fields than
/// `min(slots.len(), config.limits.max_headers)` is [`Error::TooManyHeaders`].
///
/// The parse is restartable: call it again with more bytes appended. It reports an
/// error only once the line holding it is complete or a limit is reached, so the
/// answer never depends on how the bytes were split into reads.
///
/// ```
/// use anon_http::{parse_request, Config, Framing, HeaderSlot, Status};
///
/// let mut slots = [HeaderSlot::EMPTY; 16];
/// let buf = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
/// let Status::Complete(req) = parse_request(buf, &Config::default(), &mut slots)? else {
///     panic!("complete head expected");
/// };
/// assert_eq!((req.method(), req.target()), ("POST", "/up"));
/// assert_eq!(req.framing(), Framing::Length(3));
/// assert_eq!(&buf[req.head_len()..], b"abc");
/// # Ok::<(), anon_http::Error>(())
/// ```
pub fn parse_request<'b>(
    buf: &'b [u8],
    config: &Config,
    slots: &'b mut [HeaderSlot],
) -> Result<Status<Request<'b>>, Error> {
    parse_head(buf, config, slots, &mut 0)
}

/// `have` (shorter than 8 bytes) can begin `HTTP/` DIGIT `.` DIGIT.
fn version_prefix_ok(have: &[u8]) -> bool {
    have.iter().enumerate().all(|(i, &b)| match i {
        0..=4 => b == b"HTTP/"[i],
        6 => b == b'.',
        _ => b.is_ascii_digit(),
    })
}

/// Semantic state gathered from the fields that matter to framing and connection use.
#[derive(Default)]
struct Fields {
    host: Option<(u32, u32)>,
    content_length: Option<u64>,
    te_seen: bool,
    te_chunked: u8,
    te_last_chunked: bool,
    te_other: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

/// The answer for an error found at `at`: the error if the line holding it is complete
/// (an LF follows within the window) or the window is at its limit, else "partial" so
/// that the result does not depend on read boundaries.
#[inline(never)]
fn fail<'b>(win: &[u8], at: usize, at_limit: bool, e: Error) -> HeadResult<'b> {
    let rest = win.get(at..).unwrap_or_default();
    if at_limit || memchr::memchr(b'\n', rest).is_some() {
        Err(e)
    } else {
        Ok(Status::Partial)
    }
}

/// The answer when the window ran out: a limit error if it ended at its limit, else
/// "partial".
#[inline(never)]
fn cut<'b>(at_limit: bool, e: Error) -> HeadResult<'b> {
    if at_limit {
        Err(e)
    } else {
        Ok(Status::Partial)
    }
}

#[inline]
/// The parse behind [`parse_request`]. On a partial answer, `limit_at` holds the buffer
/// length at which the answer could change without a new line end arriving (the limit
/// of the window being parsed): the stream decoder re-parses only then or on a new LF.
pub(crate) fn parse_head<'b>(
    buf: &'b [u8],
    config: &Config,
    slots: &'b mut [HeaderSlot],
    limit_at: &mut usize,
) -> HeadResult<'b> {
    let lenient = &config.leniency;
    let bare_lf = lenient.allow_bare_lf;

    // ---- request line, in a window of `max_request_line` bytes -------------------
    let line_max = config.limits.request_line();
    let lw_end = buf.len().min(line_max);
    let lw = &buf[..lw_end];
    let l_limit = lw_end == line_max;
    *limit_at = line_max;
    macro_rules! line_fail {
        ($at:expr, $e:expr) => {
            return fail(lw, $at, l_limit, $e)
        };
    }
    macro_rules! line_cut {
        () => {
            return cut(l_limit, Error::RequestLineTooLong)
        };
    }

    let mut pos = 0;
    if lenient.skip_leading_empty_lines {
        loop {
            match lw.get(pos) {
                Some(b'\r') => match buf.get(pos + 1) {
                    Some(b'\n') => pos += 2,
                    Some(_) => line_fail!(pos, Error::BareCarriageReturn),
                    None => line_cut!(),
                },
                Some(b'\n') if bare_lf => pos += 1,
                Some(b'\n') => line_fail!(pos, Error::BareLineFeed),
                Some(_) => break,
                None => line_cut!(),
            }
        }
    }

    // method SP
    let method_start = pos;
    let method_end = if lw.get(pos..pos + 4) == Some(b"GET ") {
        pos + 3
    } else {
        scan_class(&TOKEN, lw, pos)
    };
    match lw.get(method_end) {
        Some(b' ') if method_end > method_start => {}
        Some(b'\r' | b'\n') if method_end == method_start => {
            line_fail!(pos, Error::LeadingEmptyLine)
        }
        Some(b' ' | b'\r' | b'\n') => line_fail!(pos, Error::InvalidRequestLine),
        Some(_) => line_fail!(method_end, Error::InvalidMethod),
        None => line_cut!(),
    }
    let method = &lw[method_start..method_end];
    pos = method_end + 1;

    // target SP
    let target_start = pos;
    loop {
        pos = scan_class(&TARGET, lw, pos);
        match lw.get(pos) {
            Some(b' ') => break,
            Some(b'%') => {
                match (lw.get(pos + 1), lw.get(pos + 2)) {
                    (Some(&h), Some(&l)) if hex_value(h).is_some() && hex_value(l).is_some() => {}
                    (Some(_), Some(_)) => line_fail!(pos, Error::InvalidTarget),
                    (Some(&h), None) if hex_value(h).is_none() => {
                        line_fail!(pos, Error::InvalidTarget)
                    }
                    _ => line_cut!(),
                }
                pos += 3;
            }
            Some(b'\r' | b'\n') => line_fail!(pos, Error::InvalidRequestLine),
            Some(_) => line_fail!(pos, Error::InvalidTarget),
            None => line_cut!(),
        }
    }
    if pos == target_start {
        line_fail!(pos, Error::InvalidRequestLine);
    }
    let target = &lw[target_start..pos];
    pos += 1;

    // version CRLF
    let Some(v) = lw.get(pos..pos + 8) else {
        // A prefix that cannot become a version fails now, exactly as the complete
        // version would: otherwise the answer would depend on read boundaries.
        let have = lw.get(pos..).unwrap_or_default();
        if !version_prefix_ok(have) {
            line_fail!(pos, Error::InvalidVersion);
        }
        line_cut!();
    };
    let version = if v == b"HTTP/1.1" {
        Version::Http11
    } else if v == b"HTTP/1.0" {
        Version::Http10
    } else if v.starts_with(b"HTTP/")
        && v[5].is_ascii_digit()
        && v[6] == b'.'
        && v[7].is_ascii_digit()
    {
        if v[5] == b'1' && lenient.accept_higher_minor_version {
            Version::Http11
        } else {
            line_fail!(pos, Error::UnsupportedVersion);
        }
    } else {
        line_fail!(pos, Error::InvalidVersion);
    };
    pos += 8;
    match buf.get(pos) {
        Some(b'\r') => match buf.get(pos + 1) {
            Some(b'\n') => pos += 2,
            Some(_) => line_fail!(pos, Error::BareCarriageReturn),
            // The line end may sit just past the window (a line of exactly the limit).
            None => return Ok(Status::Partial),
        },
        Some(b'\n') if bare_lf => pos += 1,
        Some(b'\n') => line_fail!(pos, Error::BareLineFeed),
        Some(_) => line_fail!(pos, Error::InvalidVersion),
        None => return Ok(Status::Partial),
    }

    // ---- header section, in a window of `max_header_section` bytes ---------------
    let fields_start = pos;
    let section_max = fields_start + config.limits.header_section();
    let hw_end = buf.len().min(section_max);
    let hw = &buf[..hw_end];
    let h_limit = hw_end == section_max;
    *limit_at = section_max;
    macro_rules! field_fail {
        ($at:expr, $e:expr) => {
            return fail(hw, $at, h_limit, $e)
        };
    }
    macro_rules! field_cut {
        () => {
            return cut(h_limit, Error::HeaderSectionTooLarge)
        };
    }

    let max_fields = config.limits.max_headers.min(slots.len());
    let mut n = 0;
    let mut f = Fields::default();
    loop {
        match hw.get(pos) {
            Some(b'\r') => match hw.get(pos + 1) {
                Some(b'\n') => {
                    pos += 2;
                    break;
                }
                Some(_) => field_fail!(pos, Error::BareCarriageReturn),
                None => field_cut!(),
            },
            Some(b'\n') if bare_lf => {
                pos += 1;
                break;
            }
            Some(b'\n') => field_fail!(pos, Error::BareLineFeed),
            Some(b' ' | b'\t') => field_fail!(pos, Error::ObsFold),
            Some(_) => {}
            None => field_cut!(),
        }
        if n == max_fields {
            field_fail!(pos, Error::TooManyHeaders);
        }
        let name_start = pos;
        let name_end = scan_class(&TOKEN, hw, pos);
        match hw.get(name_end) {
            Some(b':') if name_end > name_start => {}
            Some(b' ' | b'\t') if name_end > name_start => {
                field_fail!(name_end, Error::WhitespaceBeforeColon)
            }
            Some(b'\r' | b'\n') if name_end > name_start => {
                field_fail!(name_end, Error::MissingColon)
            }
            Some(_) => field_fail!(name_end, Error::InvalidHeaderName),
            None => field_cut!(),
        }
        pos = name_end + 1;
        while hw.get(pos).is_some_and(|&b| is_ws(b)) {
            pos += 1;
        }
        let value_start = pos;
        let (value_end, next) = loop {
            pos = scan_to_ctl(hw, pos);
            match hw.get(pos) {
                Some(b'\t') => pos += 1,
                Some(b'\r') => match hw.get(pos + 1) {
                    Some(b'\n') => break (pos, pos + 2),
                    Some(_) => field_fail!(pos, Error::BareCarriageReturn),
                    None => field_cut!(),
                },
                Some(b'\n') if bare_lf => break (pos, pos + 1),
                Some(b'\n') => field_fail!(pos, Error::BareLineFeed),
                Some(_) => field_fail!(pos, Error::InvalidHeaderValue),
                None => field_cut!(),
            }
        };
        let mut value_end = value_end;
        while value_end > value_start && is_ws(hw[value_end - 1]) {
            value_end -= 1;
        }
        let name = &hw[name_start..name_end];
        let value = &hw[value_start..value_end];
        if let Err(e) = f.observe(name, value, value_start, version, config) {
            field_fail!(name_start, e);
        }
        slots[n] = HeaderSlot {
            name_start: name_start as u32,
            name_end: name_end as u32,
            value_start: value_start as u32,
            value_end: value_end as u32,
        };
        n += 1;
        pos = next;
    }

    // ---- the head is complete: framing and connection decisions ------------------
    // From here on every check is final (the whole head is in `buf`).
    let form = target_form(method, target)?;
    if version == Version::Http11 && f.host.is_none() {
        return Err(Error::MissingHost);
    }
    let host = if form == TargetForm::Absolute {
        let auth = absolute_authority(target)?;
        Span::new(target_start + auth.start, target_start + auth.end)
    } else {
        f.host
            .map_or(Span::NONE, |(s, e)| Span::new(s as usize, e as usize))
    };
    let framing = if f.te_seen {
        if version == Version::Http10 {
            return Err(Error::TransferEncodingInHttp10);
        }
        if f.content_length.is_some() {
            return Err(Error::ContentLengthWithTransferEncoding);
        }
        if !f.te_last_chunked || f.te_chunked > 1 {
            return Err(Error::ChunkedNotLast);
        }
        if f.te_other {
            return Err(Error::UnsupportedTransferCoding);
        }
        Framing::Chunked
    } else {
        let len = f.content_length.unwrap_or(0);
        if len > config.limits.max_body {
            return Err(Error::PayloadTooLarge);
        }
        Framing::Length(len)
    };
    let keep_alive = match version {
        Version::Http11 => !f.close,
        Version::Http10 => f.keep_alive && !f.close,
    };
    Ok(Status::Complete(Request {
        buf,
        slots: &slots[..n],
        method: Span::new(method_start, method_end),
        target: Span::new(target_start, target_start + target.len()),
        host,
        framing,
        head_len: pos as u32,
        form,
        version,
        keep_alive,
        expect_continue: f.expect_continue,
    }))
}

impl Fields {
    /// Records a field that matters to framing or connection handling; dispatches on the
    /// name's length first so that most fields cost one comparison.
    #[inline(always)]
    fn observe(
        &mut self,
        name: &[u8],
        value: &[u8],
        value_start: usize,
        version: Version,
        config: &Config,
    ) -> Result<(), Error> {
        match name.len() {
            4 if eq_token_ci(name, b"host") => {
                if self.host.is_some() {
                    return Err(Error::MultipleHost);
                }
                check_host(value)?;
                self.host = Some((value_start as u32, (value_start + value.len()) as u32));
            }
            // HTTP/1.0 expectations are ignored (RFC 9110 §10.1.1).
            6 if version == Version::Http11 && eq_token_ci(name, b"expect") => {
                if !eq_token_ci(value, b"100-continue") {
                    return Err(Error::UnsupportedExpectation);
                }
                self.expect_continue = true;
            }
            10 if eq_token_ci(name, b"connection") => self.connection(value)?,
            14 if eq_token_ci(name, b"content-length") => {
                self.content_length(value, config.leniency.allow_duplicate_content_length)?
            }
            17 if eq_token_ci(name, b"transfer-encoding") => self.transfer_encoding(value)?,
            _ => {}
        }
        Ok(())
    }

    fn connection(&mut self, value: &[u8]) -> Result<(), Error> {
        if eq_token_ci(value, b"keep-alive") {
            self.keep_alive = true;
            return Ok(());
        }
        if eq_token_ci(value, b"close") {
            self.close = true;
            return Ok(());
        }
        for opt in value.split(|&b| b == b',') {
            let opt = trim_ows(opt);
            if opt.is_empty() {
                continue;
            }
            if scan_class(&TOKEN, opt, 0) != opt.len() {
                return Err(Error::InvalidConnection);
            }
            if eq_token_ci(opt, b"close") {
                self.close = true;
            } else if eq_token_ci(opt, b"keep-alive") {
                self.keep_alive = true;
            }
        }
        Ok(())
    }

    fn content_length(&mut self, value: &[u8], allow_dup: bool) -> Result<(), Error> {
        for elem in value.split(|&b| b == b',') {
            let elem = trim_ows(elem);
            if elem.is_empty() || elem.len() > 19 || !elem.iter().all(u8::is_ascii_digit) {
                return Err(Error::InvalidContentLength);
            }
            let n = elem
                .iter()
                .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
            match self.content_length {
                None => self.content_length = Some(n),
                Some(m) if m != n => return Err(Error::ConflictingContentLength),
                Some(_) if !allow_dup => return Err(Error::DuplicateContentLength),
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn transfer_encoding(&mut self, value: &[u8]) -> Result<(), Error> {
        let mut any = false;
        for elem in value.split(|&b| b == b',') {
            let elem = trim_ows(elem);
            if elem.is_empty() {
                continue;
            }
            any = true;
            let coding_end = scan_class(&TOKEN, elem, 0);
            if coding_end == 0 {
                return Err(Error::InvalidTransferEncoding);
            }
            let params = &elem[coding_end..];
            if !valid_params(params) {
                return Err(Error::InvalidTransferEncoding);
            }
            let is_chunked = params.is_empty() && eq_token_ci(elem, b"chunked");
            if is_chunked {
                self.te_chunked = self.te_chunked.saturating_add(1);
            } else {
                self.te_other = true;
            }
            self.te_last_chunked = is_chunked;
        }
        if !any {
            return Err(Error::InvalidTransferEncoding);
        }
        self.te_seen = true;
        Ok(())
    }
}

/// `*( OWS ";" OWS token "=" ( token / quoted-string ) )` (RFC 9110 §5.6.6).
fn valid_params(mut s: &[u8]) -> bool {
    loop {
        s = trim_ows_start(s);
        let Some((&b';', rest)) = s.split_first() else {
            return s.is_empty();
        };
        s = trim_ows_start(rest);
        let name_end = scan_class(&TOKEN, s, 0);
        if name_end == 0 || s.get(name_end) != Some(&b'=') {
            return false;
        }
        s = &s[name_end + 1..];
        if s.first() == Some(&b'"') {
            let mut i = 1;
            loop {
                match s.get(i) {
                    Some(b'"') => break,
                    Some(b'\\') if s.get(i + 1).is_some() => i += 2,
                    Some(&b) if b == b'\t' || b >= 0x20 && b != 0x7F && b != b'\\' => i += 1,
                    _ => return false,
                }
            }
            s = &s[i + 1..];
        } else {
            let end = scan_class(&TOKEN, s, 0);
            if end == 0 {
                return false;
            }
            s = &s[end..];
        }
    }
}

fn trim_ows_start(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ws(b)).unwrap_or(s.len());
    &s[start..]
}

/// `Host = uri-host [ ":" port ]`, possibly empty (RFC 9110 §7.2).
#[inline(always)]
fn check_host(value: &[u8]) -> Result<(), Error> {
    // Fast path: a plain name, optionally with a port.
    let end = scan_class(&PLAIN_HOST, value, 0);
    match value.get(end) {
        None => return Ok(()),
        Some(b':') if value[end + 1..].iter().all(u8::is_ascii_digit) => return Ok(()),
        _ => {}
    }
    check_host_full(value)
}

#[inline(never)]
fn check_host_full(value: &[u8]) -> Result<(), Error> {
    if scan_class(&HOST, value, 0) != value.len() {
        return Err(Error::InvalidHost);
    }
    check_authority(value).map_err(|_| Error::InvalidHost)
}

/// Checks `host [":" port]` where host is a reg-name, IPv4 or `[IP-literal]`, with valid
/// percent-escapes. Characters were already checked against the host/target classes.
fn check_authority(a: &[u8]) -> Result<(), ()> {
    let (host, port) = if a.first() == Some(&b'[') {
        let close = a.iter().position(|&b| b == b']').ok_or(())?;
        let inner = &a[1..close];
        if inner.is_empty() || inner.iter().any(|&b| b == b'[' || b == b'%') {
            return Err(());
        }
        match &a[close + 1..] {
            [] => (&a[..0], None),
            [b':', port @ ..] => (&a[..0], Some(port)),
            _ => return Err(()),
        }
    } else {
        match a.iter().position(|&b| b == b':') {
            Some(i) => (&a[..i], Some(&a[i + 1..])),
            None => (a, None),
        }
    };
    if host
        .iter()
        .any(|&b| matches!(b, b'[' | b']' | b':' | b'@' | b'/' | b'?'))
    {
        return Err(());
    }
    let mut i = 0;
    while let Some(&b) = host.get(i) {
        if b == b'%' {
            match (host.get(i + 1), host.get(i + 2)) {
                (Some(&h), Some(&l)) if hex_value(h).is_some() && hex_value(l).is_some() => {}
                _ => return Err(()),
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    if let Some(port) = port {
        if !port.iter().all(u8::is_ascii_digit) {
            return Err(());
        }
    }
    Ok(())
}

/// Decides the target's form and checks it fits the method.
fn target_form(method: &[u8], target: &[u8]) -> Result<TargetForm, Error> {
    let connect = method == b"CONNECT";
    if target.first() == Some(&b'/') {
        return if connect {
            Err(Error::InvalidTargetForm)
        } else {
            Ok(TargetForm::Origin)
        };
    }
    if target == b"*" {
        return if method == b"OPTIONS" {
            Ok(TargetForm::Asterisk)
        } else {
            Err(Error::InvalidTargetForm)
        };
    }
    if connect {
        // authority-form: uri-host ":" port, port required.
        if target.iter().any(|&b| matches!(b, b'/' | b'?' | b'@'))
            || !target.contains(&b':')
            || check_authority(target).is_err()
            || target.ends_with(b":")
        {
            return Err(Error::InvalidTargetForm);
        }
        return Ok(TargetForm::Authority);
    }
    if looks_absolute(target) {
        Ok(TargetForm::Absolute)
    } else if is_bare_authority(target) {
        Err(Error::InvalidTargetForm)
    } else {
        Err(Error::InvalidTarget)
    }
}

/// `scheme "://"` with scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
fn looks_absolute(t: &[u8]) -> bool {
    let Some(colon) = t.iter().position(|&b| b == b':') else {
        return false;
    };
    let scheme = &t[..colon];
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && t[colon..].starts_with(b"://")
}

fn is_bare_authority(t: &[u8]) -> bool {
    !t.iter().any(|&b| matches!(b, b'/' | b'?')) && check_authority(t).is_ok()
}

/// Where the authority of an absolute-form target lies in it; it must be non-empty and
/// well formed (RFC 9110 §4.2.1: an `http` URI with an empty host is invalid).
fn absolute_authority(t: &[u8]) -> Result<std::ops::Range<usize>, Error> {
    let colon = t.iter().position(|&b| b == b':').unwrap_or(0);
    let rest = &t[colon + 3..];
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let auth = &rest[..end];
    // userinfo is deprecated in http(s) URIs and a phishing vector: reject it.
    if auth.is_empty()
        || auth.starts_with(b":")
        || auth.contains(&b'@')
        || check_authority(auth).is_err()
    {
        return Err(Error::InvalidTarget);
    }
    Ok(colon + 3..colon + 3 + end)
}
