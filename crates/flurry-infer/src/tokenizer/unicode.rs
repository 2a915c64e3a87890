//! Code point classes, GPT-2's byte-to-unicode table and the BPE pre-tokenizers, each
//! a port of llama.cpp's `unicode.cpp` so that words split exactly where llama.cpp
//! splits them.
//!
//! llama.cpp runs a pre-tokenizer as a list of regexes: the text starts as one piece
//! and each regex splits every piece into its matches and the text between them. The
//! GPT-2 regex has a hand-written matcher there (ported in [`Split::Gpt2`]); the other
//! regexes of the supported pre-tokenizers are simple classes of code points, matched
//! with `std::regex` over a "collapsed" text in which every non-ASCII code point stands
//! for its category. The matchers below reproduce those semantics directly.

use super::unicode_data::{CATEGORY_RANGES, WHITESPACE};

/// Category bits of llama.cpp's `unicode_cpt_flags`.
const NUMBER: u8 = 0x02;
const LETTER: u8 = 0x04;
const PUNCTUATION: u8 = 0x20;

/// The classes of one code point, as llama.cpp's `unicode_cpt_flags_from_cpt` gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Flags {
    /// One category bit (0 outside the code space).
    category: u8,
    /// Matches `\s`.
    whitespace: bool,
}

impl Flags {
    fn is_letter(self) -> bool {
        self.category & LETTER != 0
    }
    fn is_number(self) -> bool {
        self.category & NUMBER != 0
    }
    fn is_whitespace(self) -> bool {
        self.whitespace
    }
    /// llama.cpp's `as_uint() != 0`: false only past the end of a piece.
    fn is_defined(self) -> bool {
        self.category != 0 || self.whitespace
    }
}

/// The classes of a code point.
pub(super) fn flags(cp: u32) -> Flags {
    let i = CATEGORY_RANGES.partition_point(|&packed| packed >> 8 <= cp);
    let category = if i == 0 {
        0
    } else {
        (CATEGORY_RANGES[i - 1] & 0xFF) as u8
    };
    Flags {
        category,
        whitespace: WHITESPACE.binary_search(&cp).is_ok(),
    }
}

/// GPT-2's `bytes_to_unicode`: every byte maps to a printable code point (printable
/// Latin-1 bytes to themselves, the rest to U+0100 and up, in byte order).
pub(super) fn byte_to_char(b: u8) -> char {
    let printable = |b: u8| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        return char::from(b);
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(0x100 + n).expect("below U+0200")
}

/// [`byte_to_char`] of every byte, indexed by byte.
pub(super) fn byte_chars() -> [char; 256] {
    std::array::from_fn(|b| byte_to_char(b as u8))
}

/// The inverse of [`byte_to_char`].
pub(super) fn char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    match cp {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(cp as u8),
        0x100..=0x143 => {
            let n = (cp - 0x100) as usize;
            let printable =
                |b: u8| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
            (0..=255u8).filter(|&b| !printable(b)).nth(n)
        }
        _ => None,
    }
}

/// One pre-tokenizer step (one regex of llama.cpp's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Split {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (with
    /// llama.cpp's `\s+` fallback), llama.cpp's `unicode_regex_split_custom_gpt2`.
    Gpt2,
    /// `\p{N}`: every number on its own.
    EachNumber,
    /// `\p{N}+`.
    NumberRuns,
    /// `[\p{P}\$\+<=>\^~\|]+`, plus the backtick when the flag is set (falcon).
    PunctRuns(bool),
    /// `[0-9][0-9][0-9]`.
    Digits3,
}

/// `\p{N}` over llama.cpp's collapsed text: ASCII digits, or a non-ASCII number.
fn collapsed_number(cp: u32) -> bool {
    if cp < 128 {
        return (b'0' as u32..=b'9' as u32).contains(&cp);
    }
    let f = flags(cp);
    !f.whitespace && f.category == NUMBER
}

/// `[\p{P}\$\+<=>\^~\|]` (and `` ` `` if `backtick`) over the collapsed text.
fn collapsed_punct(cp: u32, backtick: bool) -> bool {
    if cp < 128 {
        let c = cp as u8;
        // llama.cpp's ASCII expansion of \p{P}: !-#%-*,-/:-;?-@\[-\]_\{\}
        return matches!(c, b'!'..=b'#' | b'%'..=b'*' | b','..=b'/' | b':'..=b';' | b'?'..=b'@')
            || matches!(c, b'['..=b']' | b'_' | b'{' | b'}')
            || matches!(c, b'$' | b'+' | b'<' | b'=' | b'>' | b'^' | b'~' | b'|')
            || (backtick && c == b'`');
    }
    let f = flags(cp);
    !f.whitespace && f.category == PUNCTUATION
}

/// Splits `text` into words with the given steps, as llama.cpp's `unicode_regex_split`.
/// Returns the byte ranges of the words, in order, covering the whole text.
pub(super) fn pre_tokenize(text: &str, steps: &[Split]) -> Vec<std::ops::Range<usize>> {
    let cpts: Vec<u32> = text.chars().map(u32::from).collect();
    let mut offsets = vec![cpts.len()];
    if cpts.is_empty() {
        offsets.clear();
    }
    for step in steps {
        offsets = match *step {
            Split::Gpt2 => split_gpt2(&cpts, &offsets),
            Split::EachNumber => split_matches(&cpts, &offsets, |c, s, e| {
                (s..e)
                    .filter(|&p| collapsed_number(c[p]))
                    .map(|p| (p, p + 1))
                    .collect()
            }),
            Split::NumberRuns => {
                split_matches(&cpts, &offsets, |c, s, e| runs(c, s, e, collapsed_number))
            }
            Split::PunctRuns(bt) => split_matches(&cpts, &offsets, |c, s, e| {
                runs(c, s, e, |cp| collapsed_punct(cp, bt))
            }),
            Split::Digits3 => split_matches(&cpts, &offsets, |c, s, e| {
                let digit = |p: usize| c[p] < 128 && (c[p] as u8).is_ascii_digit();
                let mut out = Vec::new();
                let mut p = s;
                while p + 3 <= e {
                    if digit(p) && digit(p + 1) && digit(p + 2) {
                        out.push((p, p + 3));
                        p += 3;
                    } else {
                        p += 1;
                    }
                }
                out
            }),
        };
    }
    // Code point lengths to byte ranges.
    let mut ranges = Vec::with_capacity(offsets.len());
    let mut chars = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()));
    let mut start = chars.next().unwrap_or(0);
    for len in offsets {
        let end = if len == 0 {
            start
        } else {
            chars.nth(len - 1).unwrap_or(text.len())
        };
        ranges.push(start..end);
        start = end;
    }
    ranges
}

/// Maximal runs of code points in `[s, e)` that satisfy `class`.
fn runs(c: &[u32], s: usize, e: usize, class: impl Fn(u32) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut p = s;
    while p < e {
        if class(c[p]) {
            let q = (p..e).find(|&q| !class(c[q])).unwrap_or(e);
            out.push((p, q));
            p = q;
        } else {
            p += 1;
        }
    }
    out
}

/// llama.cpp's `unicode_regex_split_stl`: each piece becomes its matches and the text
/// between them. `matches(cpts, start, end)` lists non-overlapping ascending matches.
fn split_matches(
    cpts: &[u32],
    offsets: &[usize],
    matches: impl Fn(&[u32], usize, usize) -> Vec<(usize, usize)>,
) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let end = start + len;
        let mut prev = start;
        for (ms, me) in matches(cpts, start, end) {
            if ms > prev {
                out.push(ms - prev);
            }
            out.push(me - ms);
            prev = me;
        }
        if prev < end {
            out.push(end - prev);
        }
        start = end;
    }
    out
}

/// A port of llama.cpp's `unicode_regex_split_custom_gpt2`.
fn split_gpt2(cpts: &[u32], offsets: &[usize]) -> Vec<usize> {
    const OUT_OF_RANGE: u32 = 0xFFFF_FFFF;
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let ini = start;
        let end = start + len;
        start = end;
        let cpt = |p: usize| {
            if p >= ini && p < end {
                cpts[p]
            } else {
                OUT_OF_RANGE
            }
        };
        let fl = |p: usize| {
            if p >= ini && p < end {
                flags(cpts[p])
            } else {
                Flags::default()
            }
        };
        let mut prev_end = ini;
        let mut add = |e: usize, out: &mut Vec<usize>| {
            let n = e - prev_end;
            if n > 0 {
                out.push(n);
            }
            prev_end = e;
            n
        };
        let mut pos = ini;
        while pos < end {
            let c = cpt(pos);
            let f = fl(pos);
            // 's|'t|'re|'ve|'m|'ll|'d
            if c == u32::from('\'') && pos + 1 < end {
                let next = char::from_u32(cpt(pos + 1)).unwrap_or('\0');
                if matches!(next, 's' | 't' | 'm' | 'd') {
                    pos += add(pos + 2, &mut out);
                    continue;
                }
                if pos + 2 < end {
                    let next2 = char::from_u32(cpt(pos + 2)).unwrap_or('\0');
                    if matches!((next, next2), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                        pos += add(pos + 3, &mut out);
                        continue;
                    }
                }
            }
            let space = c == u32::from(' ');
            let mut f2 = if space { fl(pos + 1) } else { f };
            // <space>?\p{L}+
            if f2.is_letter() {
                pos += usize::from(space);
                while f2.is_letter() {
                    pos += 1;
                    f2 = fl(pos);
                }
                add(pos, &mut out);
                continue;
            }
            // <space>?\p{N}+
            if f2.is_number() {
                pos += usize::from(space);
                while f2.is_number() {
                    pos += 1;
                    f2 = fl(pos);
                }
                add(pos, &mut out);
                continue;
            }
            // <space>?[^\s\p{L}\p{N}]+
            let other =
                |f: Flags| !(f.is_whitespace() || f.is_letter() || f.is_number()) && f.is_defined();
            if other(f2) {
                pos += usize::from(space);
                while other(f2) {
                    pos += 1;
                    f2 = fl(pos);
                }
                add(pos, &mut out);
                continue;
            }
            let mut n_ws = 0;
            while fl(pos + n_ws).is_whitespace() {
                n_ws += 1;
            }
            // \s+(?!\S)
            if n_ws > 1 && cpt(pos + n_ws) != OUT_OF_RANGE {
                pos += n_ws - 1;
                add(pos, &mut out);
                continue;
            }
            // \s+
            if n_ws > 0 {
                pos += n_ws;
                add(pos, &mut out);
                continue;
            }
            // no match
            pos += 1;
            add(pos, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words<'a>(text: &'a str, steps: &[Split]) -> Vec<&'a str> {
        pre_tokenize(text, steps)
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn bytes_to_unicode_roundtrip() {
        let chars = byte_chars();
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let c = chars[b as usize];
            assert!(seen.insert(c), "byte {b} maps to a used char");
            assert_eq!(char_to_byte(c), Some(b));
        }
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'A'), 'A');
        assert_eq!(char_to_byte('€'), None);
    }

    #[test]
    fn flags_match_llama_cpp_classes() {
        assert!(flags('a' as u32).is_letter());
        assert!(flags('中' as u32).is_letter());
        assert!(flags('7' as u32).is_number());
        assert!(flags('½' as u32).is_number());
        assert!(flags(' ' as u32).is_whitespace());
        assert!(flags(0x3000).is_whitespace());
        assert!(!flags('😀' as u32).is_letter());
        assert!(flags('😀' as u32).is_defined());
    }

    #[test]
    fn gpt2_split() {
        let s = [Split::Gpt2];
        assert_eq!(words("Hello world", &s), ["Hello", " world"]);
        assert_eq!(words("I'm here's", &s), ["I", "'m", " here", "'s"]);
        assert_eq!(words("a   b  ", &s), ["a", "  ", " b", "  "]);
        assert_eq!(words(" 123 !!", &s), [" 123", " !!"]);
        assert_eq!(words("", &s), Vec::<&str>::new());
    }

    #[test]
    fn starcoder_split_isolates_digits() {
        let s = [Split::EachNumber, Split::Gpt2];
        assert_eq!(words("ab 123x", &s), ["ab", " ", "1", "2", "3", "x"]);
    }

    #[test]
    fn default_split() {
        let s = [
            Split::PunctRuns(false),
            Split::Gpt2,
            Split::NumberRuns,
            Split::Digits3,
        ];
        assert_eq!(words("a, 12345", &s), ["a", ",", " ", "123", "45"]);
    }
}
