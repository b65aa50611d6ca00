//! The decoding error: one flat `Copy` enum, one variant per rule broken.

/// A rule of RFC 9112/9110 (or one of our limits) that the input broke.
///
/// Decoding never recovers from an error: a server answers with [`Error::status`] (or the
/// pre-rendered [`Error::reply`]) and closes the connection, because the framing of
/// anything after the bad bytes is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request line (with skipped empty lines) exceeds `Limits::max_request_line`.
    #[error("request line longer than the limit")]
    RequestLineTooLong,
    /// An empty line came before the request line and `skip_leading_empty_lines` is off.
    #[error("empty line before the request line")]
    LeadingEmptyLine,
    /// The method is empty or holds a byte that is not a token character.
    #[error("method is not a token")]
    InvalidMethod,
    /// The request line is not `method SP target SP version` with single spaces.
    #[error("malformed request line")]
    InvalidRequestLine,
    /// The request target holds a byte outside RFC 3986's set, a `#`, a bad
    /// percent-escape, or an absolute-form target that is not `scheme://authority...`.
    #[error("invalid request target")]
    InvalidTarget,
    /// The target's form does not fit the method: `*` other than with OPTIONS, CONNECT
    /// without an authority-form target, or an authority-form target without CONNECT.
    #[error("request target form does not fit the method")]
    InvalidTargetForm,
    /// The version is not `HTTP/` DIGIT `.` DIGIT.
    #[error("malformed HTTP version")]
    InvalidVersion,
    /// A well-formed version other than HTTP/1.0 and HTTP/1.1.
    #[error("HTTP version not supported")]
    UnsupportedVersion,
    /// A line ends with a bare LF and `allow_bare_lf` is off.
    #[error("bare LF line terminator")]
    BareLineFeed,
    /// A CR not followed by LF.
    #[error("CR not followed by LF")]
    BareCarriageReturn,
    /// The header section exceeds `Limits::max_header_section`.
    #[error("header section larger than the limit")]
    HeaderSectionTooLarge,
    /// More header fields than `Limits::max_headers` (or than the slots given).
    #[error("more header fields than the limit")]
    TooManyHeaders,
    /// A field line starts with whitespace: obsolete line folding, or whitespace between
    /// the request line and the first field.
    #[error("obsolete line folding")]
    ObsFold,
    /// A field name is empty or holds a byte that is not a token character.
    #[error("field name is not a token")]
    InvalidHeaderName,
    /// Whitespace between a field name and its colon.
    #[error("whitespace between field name and colon")]
    WhitespaceBeforeColon,
    /// A field line ends before any colon.
    #[error("field line without a colon")]
    MissingColon,
    /// A field value holds NUL, another control byte than HTAB, or DEL.
    #[error("control byte in field value")]
    InvalidHeaderValue,
    /// An HTTP/1.1 request without a `Host` field.
    #[error("HTTP/1.1 request without Host")]
    MissingHost,
    /// More than one `Host` field.
    #[error("several Host fields")]
    MultipleHost,
    /// A `Host` value that is not `host [":" port]`.
    #[error("invalid Host value")]
    InvalidHost,
    /// A `Content-Length` that is not 1*DIGIT (or overflows 64 bits).
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// `Content-Length` repeated with differing values.
    #[error("differing Content-Length values")]
    ConflictingContentLength,
    /// `Content-Length` repeated (identical values) and `allow_duplicate_content_length`
    /// is off.
    #[error("repeated Content-Length")]
    DuplicateContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`.
    #[error("Content-Length together with Transfer-Encoding")]
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` whose final coding is not `chunked`, or with `chunked` twice.
    #[error("chunked is not the final transfer coding exactly once")]
    ChunkedNotLast,
    /// `Transfer-Encoding` in an HTTP/1.0 request (RFC 9112 §6.1: faulty framing).
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingInHttp10,
    /// A `Transfer-Encoding` value that is not a list of transfer codings.
    #[error("invalid Transfer-Encoding value")]
    InvalidTransferEncoding,
    /// A transfer coding other than `chunked` (we decode no other).
    #[error("transfer coding not implemented")]
    UnsupportedTransferCoding,
    /// A `Connection` value that is not a list of tokens.
    #[error("invalid Connection value")]
    InvalidConnection,
    /// An `Expect` value other than `100-continue`.
    #[error("expectation not supported")]
    UnsupportedExpectation,
    /// The body exceeds `Limits::max_body`.
    #[error("body larger than the limit")]
    PayloadTooLarge,
    /// A chunk size with no hex digit or a non-hex byte.
    #[error("invalid chunk size")]
    InvalidChunkSize,
    /// A chunk size with more than 16 hex digits.
    #[error("chunk size too long")]
    ChunkSizeTooLong,
    /// A chunk extension that is not `*( BWS ";" BWS name [ BWS "=" BWS value ] )`.
    #[error("invalid chunk extension")]
    InvalidChunkExtension,
    /// A chunk extension longer than `Limits::max_chunk_extension`.
    #[error("chunk extension longer than the limit")]
    ChunkExtensionTooLong,
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    InvalidChunkDelimiter,
    /// The trailer section exceeds `Limits::max_trailer_section`.
    #[error("trailer section larger than the limit")]
    TrailerSectionTooLarge,
}

macro_rules! reply {
    ($status:literal) => {
        concat!(
            "HTTP/1.1 ",
            $status,
            "\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes()
    };
}

impl Error {
    /// The status a server answers with: 400, 413, 414, 417, 431, 501 or 505.
    pub const fn status(self) -> u16 {
        use Error::*;
        match self {
            RequestLineTooLong => 414,
            HeaderSectionTooLarge | TooManyHeaders | TrailerSectionTooLarge => 431,
            PayloadTooLarge => 413,
            UnsupportedExpectation => 417,
            UnsupportedTransferCoding => 501,
            UnsupportedVersion => 505,
            LeadingEmptyLine
            | InvalidMethod
            | InvalidRequestLine
            | InvalidTarget
            | InvalidTargetForm
            | InvalidVersion
            | BareLineFeed
            | BareCarriageReturn
            | ObsFold
            | InvalidHeaderName
            | WhitespaceBeforeColon
            | MissingColon
            | InvalidHeaderValue
            | MissingHost
            | MultipleHost
            | InvalidHost
            | InvalidContentLength
            | ConflictingContentLength
            | DuplicateContentLength
            | ContentLengthWithTransferEncoding
            | ChunkedNotLast
            | TransferEncodingInHttp10
            | InvalidTransferEncoding
            | InvalidConnection
            | InvalidChunkSize
            | ChunkSizeTooLong
            | InvalidChunkExtension
            | ChunkExtensionTooLong
            | InvalidChunkDelimiter => 400,
        }
    }

    /// A complete pre-rendered response for [`Error::status`] with `Connection: close`
    /// and an empty body, to write as is (no allocation) before closing.
    pub const fn reply(self) -> &'static [u8] {
        match self.status() {
            413 => reply!("413 Content Too Large"),
            414 => reply!("414 URI Too Long"),
            417 => reply!("417 Expectation Failed"),
            431 => reply!("431 Request Header Fields Too Large"),
            501 => reply!("501 Not Implemented"),
            505 => reply!("505 HTTP Version Not Supported"),
            _ => reply!("400 Bad Request"),
        }
    }
}
