//! The vocabulary: every token's text in one buffer, with a hash index from text to id.
//!
//! A vocabulary of 262,144 tokens (Gemma 3) held as `Vec<String>` plus a
//! `HashMap<String, u32>` costs about 25 MiB of small allocations; this layout costs
//! about a fifth of that (the texts once, a `u32` end offset per token, and a table of
//! `u32` ids).

use std::hash::{BuildHasher, RandomState};

/// Token texts by id, and ids by text. Texts are distinct.
pub(crate) struct Vocab {
    /// All texts, concatenated in id order.
    text: String,
    /// `ends[i]`: the end of token `i`'s text in `text`.
    ends: Vec<u32>,
    /// Ids, hashed by their text.
    index: hashbrown::HashTable<u32>,
    hasher: RandomState,
}

/// Why a token could not be added.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The text is already the token with this id.
    Duplicate(u32),
    /// The texts together exceed 4 GiB, or there are more than `u32::MAX` tokens.
    TooLarge,
}

impl Vocab {
    /// An empty vocabulary with room for `n` tokens.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            text: String::new(),
            ends: Vec::with_capacity(n),
            index: hashbrown::HashTable::with_capacity(n),
            hasher: RandomState::new(),
        }
    }

    /// Appends `text` as the next id.
    pub(crate) fn push(&mut self, text: &str) -> Result<u32, PushError> {
        let id = u32::try_from(self.ends.len()).map_err(|_| PushError::TooLarge)?;
        let end = u32::try_from(self.text.len() + text.len()).map_err(|_| PushError::TooLarge)?;
        let hash = self.hasher.hash_one(text);
        if let Some(&prev) = self.index.find(hash, |&i| self.text_of(i) == text) {
            return Err(PushError::Duplicate(prev));
        }
        self.text.push_str(text);
        self.ends.push(end);
        let (ends, all, hasher) = (&self.ends, &self.text, &self.hasher);
        self.index
            .insert_unique(hash, id, |&i| hasher.hash_one(slice(all, ends, i as usize)));
        Ok(id)
    }

    /// Frees unused capacity once every token is in.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        let (ends, all, hasher) = (&self.ends, &self.text, &self.hasher);
        self.index
            .shrink_to_fit(|&i| hasher.hash_one(slice(all, ends, i as usize)));
    }

    /// Number of tokens.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The text of token `id`.
    pub(crate) fn get(&self, id: u32) -> Option<&str> {
        ((id as usize) < self.ends.len()).then(|| self.text_of(id))
    }

    /// The id of the token whose text is exactly `text`.
    pub(crate) fn id(&self, text: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(text);
        self.index.find(hash, |&i| self.text_of(i) == text).copied()
    }

    /// Texts in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len()).map(|i| slice(&self.text, &self.ends, i))
    }

    fn text_of(&self, id: u32) -> &str {
        slice(&self.text, &self.ends, id as usize)
    }
}

/// Token `i`'s text (`i < ends.len()`).
fn slice<'a>(text: &'a str, ends: &[u32], i: usize) -> &'a str {
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    &text[start..ends[i] as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_ids_round_trip_and_duplicates_are_refused() {
        let words = ["a", "", "ab", "é", "<|im_end|>", "b"];
        let mut v = Vocab::with_capacity(2);
        for (i, w) in words.iter().enumerate() {
            assert_eq!(v.push(w), Ok(i as u32));
        }
        assert_eq!(v.push("ab"), Err(PushError::Duplicate(2)));
        assert_eq!(v.push(""), Err(PushError::Duplicate(1)));
        v.shrink_to_fit();
        assert_eq!(v.len(), words.len());
        for (i, w) in words.iter().enumerate() {
            assert_eq!(v.get(i as u32), Some(*w));
            assert_eq!(v.id(w), Some(i as u32));
        }
        assert_eq!(v.get(words.len() as u32), None);
        assert_eq!(v.id("abc"), None);
        assert_eq!(v.iter().collect::<Vec<_>>(), words);
    }
}
