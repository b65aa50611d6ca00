//! Limits and leniency switches: every input the codec accepts is bounded, and every
//! departure from the strict reading of RFC 9112 is a named, documented switch.

/// Size limits applied while decoding. Each one has a documented default and maps to the
/// status a server should answer when it is exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line in bytes, excluding its CRLF; empty lines skipped before it
    /// (see [`Leniency::skip_leading_empty_lines`]) count too. Default 8 KiB; exceeding it
    /// is [`Error::RequestLineTooLong`](crate::Error::RequestLineTooLong) (414).
    pub max_request_line: usize,
    /// Longest header section (every field line and the empty line ending the head), in
    /// bytes. Default 64 KiB; exceeding it is
    /// [`Error::HeaderSectionTooLarge`](crate::Error::HeaderSectionTooLarge) (431).
    pub max_header_section: usize,
    /// Most header fields in one request. Default 100; one more is
    /// [`Error::TooManyHeaders`](crate::Error::TooManyHeaders) (431).
    pub max_headers: usize,
    /// Largest request body, by `Content-Length` or by the sum of the chunk sizes.
    /// Default 8 MiB; exceeding it is
    /// [`Error::PayloadTooLarge`](crate::Error::PayloadTooLarge) (413).
    pub max_body: u64,
    /// Longest chunk extension (everything between the chunk size and the CRLF of a chunk
    /// line). Default 256 bytes; exceeding it is
    /// [`Error::ChunkExtensionTooLong`](crate::Error::ChunkExtensionTooLong) (400).
    pub max_chunk_extension: usize,
    /// Longest trailer section after the last chunk (field lines and the final empty
    /// line). Default 8 KiB; exceeding it is
    /// [`Error::TrailerSectionTooLarge`](crate::Error::TrailerSectionTooLarge) (431).
    pub max_trailer_section: usize,
}

impl Limits {
    /// Every position inside a head is stored as a `u32`; limits are clamped below this.
    pub(crate) const CEILING: usize = 1 << 30;

    /// The defaults listed on each field.
    pub const DEFAULT: Limits = Limits {
        max_request_line: 8 * 1024,
        max_header_section: 64 * 1024,
        max_headers: 100,
        max_body: 8 * 1024 * 1024,
        max_chunk_extension: 256,
        max_trailer_section: 8 * 1024,
    };

    pub(crate) fn request_line(&self) -> usize {
        self.max_request_line.clamp(1, Self::CEILING)
    }

    pub(crate) fn header_section(&self) -> usize {
        self.max_header_section.clamp(1, Self::CEILING)
    }

    pub(crate) fn trailer_section(&self) -> usize {
        self.max_trailer_section.clamp(1, Self::CEILING)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Departures from the strict reading of RFC 9112. All are off by default; each one is
/// something the RFC permits a recipient to accept, never something it forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Leniency {
    /// Accept a bare LF as a line terminator in the head, chunk lines and trailers
    /// (RFC 9112 §2.2 allows it). Off: a bare LF is
    /// [`Error::BareLineFeed`](crate::Error::BareLineFeed).
    pub allow_bare_lf: bool,
    /// Skip empty lines received before a request line (RFC 9112 §2.2 says a server
    /// SHOULD ignore at least one; some clients send a CRLF after a body). The skipped
    /// bytes count against [`Limits::max_request_line`]. Off: an empty line first is
    /// [`Error::LeadingEmptyLine`](crate::Error::LeadingEmptyLine).
    pub skip_leading_empty_lines: bool,
    /// Treat `HTTP/1.x` with a minor version above 1 as HTTP/1.1 (RFC 9110 §2.5). Off:
    /// it is [`Error::UnsupportedVersion`](crate::Error::UnsupportedVersion) (505).
    pub accept_higher_minor_version: bool,
    /// Accept `Content-Length` repeated with identical values, as separate fields or as
    /// a list (`5, 5`), and use the value once (RFC 9110 §8.6). Off: any repetition is
    /// [`Error::DuplicateContentLength`](crate::Error::DuplicateContentLength). Differing
    /// values are [`Error::ConflictingContentLength`](crate::Error::ConflictingContentLength)
    /// either way.
    pub allow_duplicate_content_length: bool,
}

impl Leniency {
    /// Everything strict.
    pub const STRICT: Leniency = Leniency {
        allow_bare_lf: false,
        skip_leading_empty_lines: false,
        accept_higher_minor_version: false,
        allow_duplicate_content_length: false,
    };
}

/// Decoder configuration: limits plus leniency switches. `Config::default()` is strict
/// with the default limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config {
    /// Size limits.
    pub limits: Limits,
    /// Leniency switches (all off by default).
    pub leniency: Leniency,
}

impl Config {
    /// Strict parsing with the default limits (the same as `Config::default()`).
    pub const STRICT: Config = Config {
        limits: Limits::DEFAULT,
        leniency: Leniency::STRICT,
    };
}
