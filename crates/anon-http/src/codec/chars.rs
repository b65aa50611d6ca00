//! Byte classes (RFC 9110 §5.6.2 tokens, RFC 3986 target bytes) and the scanners over
//! them. Scanners look at 8 bytes per step where they can: table lookups combined with
//! `&` (one branch per 8 bytes), or SWAR on a `u64` for field values. All safe code.

macro_rules! table {
    ($pred:ident) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $pred(i as u8);
            i += 1;
        }
        t
    }};
}

const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// RFC 3986 unreserved, sub-delims, `:`, `@`, `/`, `?`, `[`, `]` (IP literals); `%` is
/// handled by the scanner; `#` (a fragment) is excluded.
const fn is_target_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'['
                | b']'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'?'
        )
}

/// `Host` bytes: reg-name / IPv4 / IP-literal characters and the port colon; `%` escapes
/// are checked by the caller.
const fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'%'
        )
}

/// The host characters nearly every `Host` value is made of (reg-name without escapes
/// or sub-delims): a fast path before the full authority check.
const fn is_plain_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

pub(crate) static TOKEN: [bool; 256] = table!(is_tchar);
pub(crate) static PLAIN_HOST: [bool; 256] = table!(is_plain_host_char);
pub(crate) static TARGET: [bool; 256] = table!(is_target_char);
pub(crate) static HOST: [bool; 256] = table!(is_host_char);

/// Index of the first byte at or after `i` for which `class` is false, or `buf.len()`.
#[inline(always)]
pub(crate) fn scan_class(class: &[bool; 256], buf: &[u8], mut i: usize) -> usize {
    while let Some(c) = buf.get(i..i + 8) {
        let all = class[c[0] as usize]
            & class[c[1] as usize]
            & class[c[2] as usize]
            & class[c[3] as usize]
            & class[c[4] as usize]
            & class[c[5] as usize]
            & class[c[6] as usize]
            & class[c[7] as usize];
        if !all {
            break;
        }
        i += 8;
    }
    while let Some(&b) = buf.get(i) {
        if !class[b as usize] {
            break;
        }
        i += 1;
    }
    i
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Flags (high bit of each byte) the bytes of `x` below 0x20 or equal to 0x7F. Higher
/// flags may be false positives caused by borrows, but the lowest flag is exact, which is
/// all the scanner uses.
#[inline(always)]
fn ctl_mask(x: u64) -> u64 {
    let below_space = x.wrapping_sub(LO * 0x20) & !x & HI;
    let y = x ^ (LO * 0x7F);
    let del = y.wrapping_sub(LO) & !y & HI;
    below_space | del
}

/// Index of the first control byte (below 0x20, or DEL) at or after `i`, or `buf.len()`.
/// Bytes 0x80..=0xFF (obs-text) are not control bytes.
#[inline(always)]
pub(crate) fn scan_to_ctl(buf: &[u8], mut i: usize) -> usize {
    // 16 bytes per step while there are that many: one branch for two words.
    while let Some(c) = buf.get(i..i + 16) {
        let mut w0 = [0u8; 8];
        w0.copy_from_slice(&c[..8]);
        let mut w1 = [0u8; 8];
        w1.copy_from_slice(&c[8..]);
        let m0 = ctl_mask(u64::from_le_bytes(w0));
        let m1 = ctl_mask(u64::from_le_bytes(w1));
        if m0 | m1 != 0 {
            if m0 != 0 {
                return i + (m0.trailing_zeros() / 8) as usize;
            }
            return i + 8 + (m1.trailing_zeros() / 8) as usize;
        }
        i += 16;
    }
    while let Some(c) = buf.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let m = ctl_mask(u64::from_le_bytes(w));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = buf.get(i) {
        if b < 0x20 || b == 0x7F {
            break;
        }
        i += 1;
    }
    i
}

/// The value of a hex digit.
#[inline]
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `name` equals the lowercase pattern `lower` ignoring ASCII case. Exact for names made
/// of token characters and patterns of lowercase letters, digits and `-`: `| 0x20` maps
/// only `X` and `x` to `x`, and only CR (not a token character) besides `-` to `-`.
#[inline(always)]
pub(crate) fn eq_token_ci(name: &[u8], lower: &[u8]) -> bool {
    if name.len() != lower.len() {
        return false;
    }
    let mut i = 0;
    while let (Some(a), Some(b)) = (name.get(i..i + 8), lower.get(i..i + 8)) {
        let mut x = [0u8; 8];
        x.copy_from_slice(a);
        let mut y = [0u8; 8];
        y.copy_from_slice(b);
        if u64::from_le_bytes(x) | (LO * 0x20) != u64::from_le_bytes(y) {
            return false;
        }
        i += 8;
    }
    name[i..]
        .iter()
        .zip(&lower[i..])
        .all(|(&a, &b)| a | 0x20 == b)
}

/// `b` is SP or HTAB.
#[inline(always)]
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing SP/HTAB.
pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ws(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_scan_matches_bytewise() {
        for len in 0..24 {
            for pos in 0..=len {
                for bad in [0u8, 0x09, 0x0A, 0x0D, 0x1F, 0x7F] {
                    let mut v = vec![b'a'; len];
                    v.iter_mut().skip(pos + 1).for_each(|b| *b = 0x80);
                    if pos < len {
                        v[pos] = bad;
                    }
                    assert_eq!(scan_to_ctl(&v, 0), pos, "len {len} pos {pos} bad {bad:#x}");
                }
            }
        }
        // 0x20, 0x7E and obs-text are not control bytes.
        assert_eq!(
            scan_to_ctl(&[0x20, 0x7E, 0x80, 0xFF, 0x20, 0x21, 0x22, 0x23, 0x24], 0),
            9
        );
    }

    #[test]
    fn token_case_compare() {
        assert!(eq_token_ci(b"Content-Length", b"content-length"));
        assert!(eq_token_ci(b"TRANSFER-ENCODING", b"transfer-encoding"));
        assert!(!eq_token_ci(b"Content-Lengtx", b"content-length"));
        assert!(!eq_token_ci(b"host", b"hos"));
    }

    #[test]
    fn class_scan_stops_at_first_outsider() {
        let s = b"abcdefghijklmnop:rest";
        assert_eq!(scan_class(&TOKEN, s, 0), 16);
        assert_eq!(scan_class(&TOKEN, s, 3), 16);
        assert_eq!(scan_class(&TOKEN, b"abc", 0), 3);
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
    }
}
