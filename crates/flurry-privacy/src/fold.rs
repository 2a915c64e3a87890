//! Case- and accent-folded text with a map back to the original's byte offsets, so the
//! owner's entities match "jose" for "José" and "ALICE" for "Alice".

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// `text` folded: lower case, accents dropped; each folded byte knows the original
/// character it came from.
pub(crate) struct Folded {
    pub(crate) text: String,
    /// For each byte of `text`: the byte range of the original character.
    origin: Vec<(u32, u32)>,
}

impl Folded {
    pub(crate) fn new(original: &str) -> Folded {
        let mut text = String::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len());
        let mut buf = [0u8; 4];
        for (i, c) in original.char_indices() {
            let range = (i as u32, (i + c.len_utf8()) as u32);
            if c.is_ascii() {
                let l = c.to_ascii_lowercase();
                text.push(l);
                origin.push(range);
                continue;
            }
            for d in std::iter::once(c).nfd().filter(|d| !is_combining_mark(*d)) {
                for l in d.to_lowercase() {
                    let s = l.encode_utf8(&mut buf);
                    text.push_str(s);
                    origin.extend(std::iter::repeat_n(range, s.len()));
                }
            }
        }
        Folded { text, origin }
    }

    /// The original byte range of the folded range `start..end` (non-empty).
    pub(crate) fn original(&self, start: usize, end: usize) -> (usize, usize) {
        (
            self.origin[start].0 as usize,
            self.origin[end - 1].1 as usize,
        )
    }
}

/// `s` folded the same way, for building patterns.
pub(crate) fn fold(s: &str) -> String {
    Folded::new(s).text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_accents_and_maps_back() {
        let f = Folded::new("Mr. JOSÉ Núñez, 王建国");
        assert_eq!(f.text, "mr. jose nunez, 王建国");
        let at = f.text.find("nunez").unwrap();
        let (s, e) = f.original(at, at + 5);
        assert_eq!(&"Mr. JOSÉ Núñez, 王建国"[s..e], "Núñez");
        let at = f.text.find("建国").unwrap();
        let (s, e) = f.original(at, at + "建国".len());
        assert_eq!(&"Mr. JOSÉ Núñez, 王建国"[s..e], "建国");
    }
}
