//! The packed weight layout of the 32-element formats (Q4_0, Q4_1, Q5_0, Q8_0).
//!
//! [`crate::Model::load`] repacks these weights once, so that the kernels read them in the
//! order they compute in and never re-lay a row per call. A packed row has exactly the
//! bytes of the GGUF row (no padding): the same quants and `f16` scales, moved.
//!
//! For a row of `nb` blocks, blocks go in groups of 8 (`nb / 8` full groups, then a tail
//! group of `L = nb % 8` blocks). With `qb` quant bytes per block (16 for Q4_0/Q4_1, 20
//! for Q5_0, 32 for Q8_0), group `g` takes bytes `g * 8 * qb ..` and the tail follows.
//! Inside a group of `L` blocks, "vector `m`" (m = 0..8) holds elements `4m..4m+4` of
//! every block, block `k` at bytes `4k..4k+4`: one 32-bit lane per block, so lane-wise
//! 4-byte dot products summed over the 8 vectors give each block's integer sum with no
//! horizontal reduction (the activations are laid out the same way per call).
//!
//! - Q4_0 / Q4_1: 4 vectors of `4L` bytes; byte `4k + j` of vector `p` is the GGUF quant
//!   byte `4p + j` of block `k`: its low nibble is vector `p`'s element, its high nibble
//!   vector `p + 4`'s.
//! - Q5_0: as Q4 (16 bytes per block), then `4L` bytes of fifth bits: bit `m` of byte
//!   `4k + j` is the fifth bit of element `4m + j` of block `k`.
//! - Q8_0: 8 vectors of `4L` bytes.
//!
//! After the quants come the `nb` scales `d` (f16), then Q4_1's `nb` minimums `m` (f16).
//! Results are bit-identical to the GGUF layout: the integer sums are exact and the
//! canonical float terms (see `docs/determinism.md`) do not change.

use super::portable;
use super::{GgmlType, Job, Kernel, QMatrix};

/// Whether [`pack_row`] handles this type.
pub fn packable(dtype: GgmlType) -> bool {
    matches!(
        dtype,
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q8_0
    )
}

/// Quant bytes per block in the packed layout.
fn quant_bytes(dtype: GgmlType) -> usize {
    match dtype {
        GgmlType::Q4_0 | GgmlType::Q4_1 => 16,
        GgmlType::Q5_0 => 20,
        GgmlType::Q8_0 => 32,
        other => panic!("{other} has no packed layout"),
    }
}

/// Byte offset of block `i`'s 4 bytes in stored vector `v` of its group, in a packed row
/// of `nb` blocks with `qb` quant bytes per block.
fn lane_offset(nb: usize, qb: usize, i: usize, v: usize) -> usize {
    let g = i / 8;
    let lanes = if g < nb / 8 { 8 } else { nb % 8 };
    g * 8 * qb + v * 4 * lanes + 4 * (i % 8)
}

/// Copies one GGUF row (`nb` blocks of `dtype`) into the packed layout.
///
/// # Panics
///
/// If the type has no packed layout or the lengths are not whole blocks of the same row.
pub fn pack_row(dtype: GgmlType, src: &[u8], dst: &mut [u8]) {
    let bb = dtype.block_bytes();
    let qb = quant_bytes(dtype);
    assert!(src.len().is_multiple_of(bb) && dst.len() == src.len());
    let nb = src.len() / bb;
    for (i, b) in src.chunks_exact(bb).enumerate() {
        dst[nb * qb + 2 * i..nb * qb + 2 * i + 2].copy_from_slice(&b[0..2]);
        let qs = match dtype {
            GgmlType::Q4_0 => &b[2..18],
            GgmlType::Q4_1 => {
                dst[nb * qb + 2 * nb + 2 * i..][..2].copy_from_slice(&b[2..4]);
                &b[4..20]
            }
            GgmlType::Q5_0 => &b[6..22],
            _ => &b[2..34],
        };
        for v in 0..qs.len() / 4 {
            let o = lane_offset(nb, qb, i, v);
            dst[o..o + 4].copy_from_slice(&qs[4 * v..4 * v + 4]);
        }
        if dtype == GgmlType::Q5_0 {
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            let o = lane_offset(nb, qb, i, 4);
            for j in 0..4 {
                let mut byte = 0u8;
                for m in 0..8 {
                    byte |= (((qh >> (4 * m + j)) & 1) as u8) << m;
                }
                dst[o + j] = byte;
            }
        }
    }
}

/// The inverse of [`pack_row`].
///
/// # Panics
///
/// As [`pack_row`].
pub fn unpack_row(dtype: GgmlType, src: &[u8], dst: &mut [u8]) {
    let bb = dtype.block_bytes();
    let qb = quant_bytes(dtype);
    assert!(src.len().is_multiple_of(bb) && dst.len() == src.len());
    let nb = src.len() / bb;
    for (i, b) in dst.chunks_exact_mut(bb).enumerate() {
        b[0..2].copy_from_slice(&src[nb * qb + 2 * i..][..2]);
        let at = match dtype {
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => {
                b[2..4].copy_from_slice(&src[nb * qb + 2 * nb + 2 * i..][..2]);
                4
            }
            GgmlType::Q5_0 => {
                let o = lane_offset(nb, qb, i, 4);
                let mut qh = 0u32;
                for j in 0..4 {
                    for m in 0..8 {
                        qh |= u32::from((src[o + j] >> m) & 1) << (4 * m + j);
                    }
                }
                b[2..6].copy_from_slice(&qh.to_le_bytes());
                6
            }
            _ => 2,
        };
        let n = if dtype == GgmlType::Q8_0 { 8 } else { 4 };
        for v in 0..n {
            let o = lane_offset(nb, qb, i, v);
            b[at + 4 * v..at + 4 * v + 4].copy_from_slice(&src[o..o + 4]);
        }
    }
}

/// Packs every row of `w` (see [`pack_row`]).
///
/// # Panics
///
/// If the type has no packed layout or `w`'s data length is wrong.
pub fn pack_matrix(w: QMatrix<'_>) -> Vec<u8> {
    assert!(!w.packed, "already packed");
    let rb = w.row_bytes();
    assert_eq!(w.data.len(), w.rows * rb);
    let mut out = vec![0u8; w.data.len()];
    if rb > 0 {
        for (s, d) in w.data.chunks_exact(rb).zip(out.chunks_exact_mut(rb)) {
            pack_row(w.dtype, s, d);
        }
    }
    out
}

/// Portable kernel over packed rows: unpacks each job's rows and runs the portable kernel
/// of the GGUF layout (slow; for CPUs without the SIMD kernels and for tests).
fn unpacked<const T: u8>(job: &Job<'_>, out: &mut [f32]) {
    let dtype = match T {
        0 => GgmlType::Q4_0,
        1 => GgmlType::Q4_1,
        2 => GgmlType::Q5_0,
        _ => GgmlType::Q8_0,
    };
    let rb = job.row_bytes;
    let mut w = vec![0u8; job.w.len()];
    if rb > 0 {
        for (s, d) in job.w.chunks_exact(rb).zip(w.chunks_exact_mut(rb)) {
            unpack_row(dtype, s, d);
        }
    }
    let natural = Job {
        w: &w,
        row_bytes: rb,
        acts: job.acts,
        t0: job.t0,
        t1: job.t1,
        stride: job.stride,
        tile: job.tile,
    };
    portable::kernel(dtype)(&natural, out);
}

/// The portable kernel for packed weights of `dtype`.
pub(crate) fn portable_kernel(dtype: GgmlType) -> Kernel {
    match dtype {
        GgmlType::Q4_0 => unpacked::<0>,
        GgmlType::Q4_1 => unpacked::<1>,
        GgmlType::Q5_0 => unpacked::<2>,
        GgmlType::Q8_0 => unpacked::<3>,
        other => panic!("{other} has no packed layout"),
    }
}
