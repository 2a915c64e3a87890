//! The piece layer: a model file cut into 1 MiB pieces, each with the BLAKE3 chaining
//! value of its subtree.
//!
//! A ModelId is the BLAKE3 root of the file. BLAKE3 is a Merkle tree over 1 KiB chunks,
//! and a 1 MiB piece at a 1 MiB boundary is one of its subtrees (the last piece may be
//! short), so the chaining values of the pieces merge, by BLAKE3's own rule, into the
//! root. A puller asks one peer for the layer (32 bytes a piece: 32 KiB for a 1 GiB
//! model), checks that it merges into the ModelId it wants, and can then check every
//! piece from any peer on its own, as it arrives. The hashing is the `blake3` crate's
//! (`hazmat`), not a tree of our own.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};
use flurry_primitives::ModelId;

/// Bytes in a piece (1,024 BLAKE3 chunks).
pub const PIECE: u64 = 1 << 20;

/// Pieces in a layer, at most (a 128 GiB model).
pub const MAX_PIECES: u64 = 1 << 17;

/// Pieces in a file of `len` bytes (an empty file still has one, empty, piece).
pub fn piece_count(len: u64) -> u64 {
    len.div_ceil(PIECE).max(1)
}

/// The chaining values of a file's pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The file's size in bytes.
    pub len: u64,
    /// One value per piece; for a file of one piece, its root hash.
    pub cvs: Vec<ChainingValue>,
}

/// Why a layer is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayerError {
    /// The number of values does not fit the size.
    #[error("a layer for {len} bytes needs {want} piece hashes, got {got}")]
    Count {
        /// The size claimed.
        len: u64,
        /// The pieces it needs.
        want: u64,
        /// The values sent.
        got: usize,
    },
    /// More pieces than [`MAX_PIECES`].
    #[error("a model of {0} bytes is over the {MAX_PIECES}-piece limit")]
    TooLarge(u64),
    /// The values do not merge into the ModelId.
    #[error("the piece hashes do not add up to model {0}")]
    Root(ModelId),
}

impl Layer {
    /// Hashes a file piece by piece (one sequential read).
    ///
    /// # Errors
    /// When the file cannot be read, or is larger than [`MAX_PIECES`] pieces.
    pub fn of_file(path: &Path) -> std::io::Result<Self> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        if piece_count(len) > MAX_PIECES {
            return Err(std::io::Error::other(LayerError::TooLarge(len)));
        }
        let mut buf = vec![0u8; PIECE as usize];
        let mut cvs = Vec::with_capacity(piece_count(len) as usize);
        for index in 0..piece_count(len) {
            let want = piece_len(len, index) as usize;
            f.read_exact(&mut buf[..want])?;
            cvs.push(piece_cv(len, index, &buf[..want]));
        }
        Ok(Self { len, cvs })
    }

    /// Checks the shape of a layer a peer sent and that it merges into `model`.
    ///
    /// # Errors
    /// A wrong count, an oversized model or another root.
    pub fn check(&self, model: &ModelId) -> Result<(), LayerError> {
        let want = piece_count(self.len);
        if want > MAX_PIECES {
            return Err(LayerError::TooLarge(self.len));
        }
        if self.cvs.len() as u64 != want {
            return Err(LayerError::Count {
                len: self.len,
                want,
                got: self.cvs.len(),
            });
        }
        if self.root() != *model {
            return Err(LayerError::Root(*model));
        }
        Ok(())
    }

    /// The BLAKE3 root the pieces merge into.
    pub fn root(&self) -> ModelId {
        if self.cvs.len() <= 1 {
            return ModelId::from_bytes(self.cvs.first().copied().unwrap_or([0; 32]));
        }
        let half = left_pieces(self.cvs.len());
        let left = merge(&self.cvs[..half]);
        let right = merge(&self.cvs[half..]);
        merge_subtrees_root(&left, &right, Mode::Hash).into()
    }

    /// Pieces in the layer.
    pub fn pieces(&self) -> u64 {
        self.cvs.len() as u64
    }

    /// Where piece `index` starts in the file, and its length.
    pub fn range(&self, index: u64) -> (u64, u64) {
        (index * PIECE, piece_len(self.len, index))
    }

    /// True when `bytes` are piece `index` of the file.
    pub fn holds(&self, index: u64, bytes: &[u8]) -> bool {
        index < self.pieces()
            && bytes.len() as u64 == piece_len(self.len, index)
            && piece_cv(self.len, index, bytes) == self.cvs[index as usize]
    }

    /// The layer as bytes: the size (8 bytes, big-endian), then the values.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * self.cvs.len());
        out.extend_from_slice(&self.len.to_be_bytes());
        for cv in &self.cvs {
            out.extend_from_slice(cv);
        }
        out
    }

    /// Reads [`Layer::to_bytes`]; `None` when the bytes are not whole values.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (len, rest) = bytes.split_first_chunk::<8>()?;
        if rest.len() % 32 != 0 {
            return None;
        }
        let cvs = rest
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        Some(Self {
            len: u64::from_be_bytes(*len),
            cvs,
        })
    }

    /// The bytes a layer of a `len`-byte file takes in [`Layer::to_bytes`].
    pub fn encoded_len(pieces: u64) -> usize {
        8 + 32 * pieces as usize
    }
}

/// The length of piece `index` of a `len`-byte file.
fn piece_len(len: u64, index: u64) -> u64 {
    len.saturating_sub(index * PIECE).min(PIECE)
}

/// The value of one piece: its subtree's chaining value, or the root of a one-piece file.
fn piece_cv(len: u64, index: u64, bytes: &[u8]) -> ChainingValue {
    if piece_count(len) == 1 {
        return *blake3::hash(bytes).as_bytes();
    }
    let mut h = blake3::Hasher::new();
    h.set_input_offset(index * PIECE);
    h.update(bytes);
    h.finalize_non_root()
}

/// Pieces in the left subtree of a run of `n >= 2` pieces: BLAKE3 puts the largest
/// power of two below the total in the left subtree, and with whole pieces of a power
/// of two chunks that is the largest power of two below `n`.
fn left_pieces(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

fn merge(cvs: &[ChainingValue]) -> ChainingValue {
    if cvs.len() == 1 {
        return cvs[0];
    }
    let half = left_pieces(cvs.len());
    merge_subtrees_non_root(&merge(&cvs[..half]), &merge(&cvs[half..]), Mode::Hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_of(data: &[u8]) -> Layer {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        std::fs::write(&p, data).unwrap();
        Layer::of_file(&p).unwrap()
    }

    #[test]
    fn pieces_merge_into_the_files_blake3_root_at_every_size() {
        let mut data = vec![0u8; (5 * PIECE + 333) as usize];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i * 31 % 251) as u8;
        }
        let p = PIECE as usize;
        for len in [
            0,
            1,
            1024,
            p - 1,
            p,
            p + 1,
            2 * p,
            3 * p + 7,
            4 * p,
            5 * p + 333,
        ] {
            let l = layer_of(&data[..len]);
            assert_eq!(l.pieces(), piece_count(len as u64));
            assert_eq!(l.root(), ModelId::of_bytes(&data[..len]), "len {len}");
            l.check(&ModelId::of_bytes(&data[..len])).unwrap();
            for i in 0..l.pieces() {
                let (at, n) = l.range(i);
                let piece = &data[at as usize..(at + n) as usize];
                assert!(l.holds(i, piece), "len {len} piece {i}");
            }
            assert_eq!(Layer::from_bytes(&l.to_bytes()), Some(l));
        }
    }

    #[test]
    fn a_changed_byte_a_short_piece_or_a_forged_layer_is_caught() {
        let mut data = vec![0u8; (3 * PIECE + 10) as usize];
        blake3::Hasher::new().finalize_xof().fill(&mut data);
        let l = layer_of(&data);
        let id = ModelId::of_bytes(&data);
        let mut bad = data[PIECE as usize..2 * PIECE as usize].to_vec();
        assert!(l.holds(1, &bad));
        bad[77] ^= 1;
        assert!(!l.holds(1, &bad), "one flipped bit");
        assert!(!l.holds(1, &bad[..100]), "a short piece");
        assert!(
            !l.holds(2, &data[PIECE as usize..2 * PIECE as usize]),
            "another index"
        );
        assert!(!l.holds(9, &[]), "past the end");
        // A layer of another file, or this one with a value changed, does not add up.
        let mut forged = l.clone();
        forged.cvs[2][0] ^= 1;
        assert_eq!(forged.check(&id), Err(LayerError::Root(id)));
        let mut short = l.clone();
        short.cvs.pop();
        assert!(matches!(short.check(&id), Err(LayerError::Count { .. })));
        let huge = Layer {
            len: (MAX_PIECES + 1) * PIECE,
            cvs: vec![],
        };
        assert!(matches!(huge.check(&id), Err(LayerError::TooLarge(_))));
        assert_eq!(Layer::from_bytes(&[1, 2, 3]), None);
        assert_eq!(Layer::from_bytes(&[0; 8 + 31]), None);
    }
}
