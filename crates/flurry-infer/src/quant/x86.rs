//! AVX2 kernels for x86-64 CPUs with AVX2, FMA and F16C (detected at run time).
//!
//! The integer part of each block dot uses `maddubs`/`madd` (exact: no intermediate can
//! saturate for the value ranges of these formats, see [`mul_sum_i8`]); the float part
//! computes the canonical per-block terms of the portable module lane by lane and sums
//! them in its canonical order (8 running lanes, then a fixed fold), so results are
//! bit-identical to the portable path.
#![allow(unsafe_code)]

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use half::f16;

use super::portable::{
    self, EXP_LN2_HI, EXP_LN2_LO, EXP_LOG2E, EXP_MAX, EXP_MIN, EXP_P, LANES, exp_any, exp_nonpos,
    float_kernel, fold_lanes, quant_kernel, term_d, term_dm, term_k4,
};
use super::{ActRow, GgmlType, Job, Kernel};

/// Whether this CPU can run the kernels of this module.
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

// ---- Loads and small helpers. ----

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn ld256(p: &[u8]) -> __m256i {
    let p = &p[..32];
    // SAFETY: `p` has 32 readable bytes; unaligned loads have no alignment requirement.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn ld256_i8(p: &[i8]) -> __m256i {
    let p = &p[..32];
    // SAFETY: `p` has 32 readable bytes; unaligned loads have no alignment requirement.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn ld256_i16(p: &[i16]) -> __m256i {
    let p = &p[..16];
    // SAFETY: `p` has 16 readable i16s (32 bytes); unaligned loads have no alignment
    // requirement.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn ld128(p: &[u8]) -> __m128i {
    let p = &p[..16];
    // SAFETY: `p` has 16 readable bytes; unaligned loads have no alignment requirement.
    unsafe { _mm_loadu_si128(p.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn ld256_f32(p: &[f32]) -> __m256 {
    let p = &p[..8];
    // SAFETY: `p` has 8 readable f32s; unaligned loads have no alignment requirement.
    unsafe { _mm256_loadu_ps(p.as_ptr()) }
}

/// Stores the 8 lanes of `t` into `out[..8]`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn store8(out: &mut [f32], t: __m256) {
    let out = &mut out[..8];
    // SAFETY: `out` has room for 8 f32s; unaligned stores have no alignment requirement.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), t) };
}

#[inline(always)]
fn h32(b: &[u8], off: usize) -> i32 {
    i32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline(always)]
fn h16(b: &[u8], off: usize) -> i16 {
    i16::from_le_bytes([b[off], b[off + 1]])
}

/// The f16 at byte `off` of each of 8 consecutive `stride`-byte blocks of `g`, as f32.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn f16x8(g: &[u8], stride: usize, off: usize) -> __m256 {
    let g = &g[..8 * stride];
    let h = _mm_setr_epi16(
        h16(g, off),
        h16(g, stride + off),
        h16(g, 2 * stride + off),
        h16(g, 3 * stride + off),
        h16(g, 4 * stride + off),
        h16(g, 5 * stride + off),
        h16(g, 6 * stride + off),
        h16(g, 7 * stride + off),
    );
    _mm256_cvtph_ps(h)
}

/// The two f16s at bytes 0..4 of each of 8 consecutive `stride`-byte blocks of `g`
/// (Q4_1's `d` and `m`), as f32.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn f16x8_pair(g: &[u8], stride: usize) -> (__m256, __m256) {
    let g = &g[..8 * stride];
    // Lane k: d_k | m_k << 16.
    let v = _mm256_setr_epi32(
        h32(g, 0),
        h32(g, stride),
        h32(g, 2 * stride),
        h32(g, 3 * stride),
        h32(g, 4 * stride),
        h32(g, 5 * stride),
        h32(g, 6 * stride),
        h32(g, 7 * stride),
    );
    // Per 128-bit half: d0..d3 then m0..m3; then gather the d quarters and the m quarters.
    let shuf = _mm256_setr_epi8(
        0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7,
        10, 11, 14, 15,
    );
    let v = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, shuf), 0xD8);
    (
        _mm256_cvtph_ps(_mm256_castsi256_si128(v)),
        _mm256_cvtph_ps(_mm256_extracti128_si256(v, 1)),
    )
}

/// [`fold_lanes`] of the 8 lanes of `v`, with the same additions in the same order.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn fold_ps(v: __m256) -> f32 {
    // [l0 + l4, l1 + l5, l2 + l6, l3 + l7]
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    // [s0 + s2, s1 + s3, ..]
    let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    // (s0 + s2) + (s1 + s3)
    _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)))
}

/// The f16 at byte `off` of `b`, as f32 (F16C; bit-identical to the portable conversion).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn f16_1(b: &[u8], off: usize) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(h16(b, off)))))
}

/// 16 bytes of packed nibbles to 32 bytes: low nibbles, then high nibbles.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn nibbles(qs: &[u8]) -> __m256i {
    // Both halves hold the 16 bytes; the high half shifted right by 4 (within 32-bit
    // lanes: the bits pulled in from the next byte are masked off).
    let x = _mm256_broadcastsi128_si256(ld128(qs));
    let v = _mm256_srlv_epi32(x, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    _mm256_and_si256(v, _mm256_set1_epi8(0x0F))
}

/// Byte `k` is 0xFF where bit `k` of `x` is set, else 0.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bytes_from_bits(x: u32) -> __m256i {
    let shuf = _mm256_set_epi64x(
        0x0303_0303_0303_0303,
        0x0202_0202_0202_0202,
        0x0101_0101_0101_0101,
        0,
    );
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x as i32), shuf);
    let bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe));
    _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
}

/// Unsigned `x` times signed `y`, summed to 8 i32 lanes. Exact while every adjacent pair
/// `x[2k]*y[2k] + x[2k+1]*y[2k+1]` fits an i16 (true for all callers: |x| <= 128 with
/// |y| <= 127, or x <= 63).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn mul_sum_u8_i8(x: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
}

/// Signed `x` (any i8) times signed `y` (in [-127, 127], as the activation quantisers
/// produce), summed to 8 i32 lanes, exactly: |x| becomes the unsigned operand (128 for
/// -128 reads correctly as u8) and x's sign moves onto y, which cannot overflow.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn mul_sum_i8(x: __m256i, y: __m256i) -> __m256i {
    mul_sum_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// Horizontal sums of 8 vectors: lane k of the result is the sum of the lanes of `v[k]`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn hsum8(v: &[__m256i; 8]) -> __m256i {
    let a = _mm256_hadd_epi32(v[0], v[1]);
    let b = _mm256_hadd_epi32(v[2], v[3]);
    let c = _mm256_hadd_epi32(v[4], v[5]);
    let d = _mm256_hadd_epi32(v[6], v[7]);
    // Lane halves: [v0 v1 v2 v3] partial sums (low: lanes 0-3, high: lanes 4-7).
    let ab = _mm256_hadd_epi32(a, b);
    let cd = _mm256_hadd_epi32(c, d);
    let lo = _mm256_permute2x128_si256(ab, cd, 0x20);
    let hi = _mm256_permute2x128_si256(ab, cd, 0x31);
    _mm256_add_epi32(lo, hi)
}

/// [`hsum8`] of the first `valid` vectors of `v`, which the caller has written, and zero
/// vectors for the rest (taken as registers: zeroing the unwritten entries in memory was
/// compiled to a `memset` call per entry run).
///
/// # Safety
///
/// Entries `0..valid` of `v` are initialised.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn hsum8_init(v: &[MaybeUninit<__m256i>; 8], valid: usize) -> __m256i {
    let mut x = [_mm256_setzero_si256(); 8];
    for (j, x) in x.iter_mut().enumerate() {
        if j < valid {
            // SAFETY: entry `j < valid` is initialised (caller's contract).
            *x = unsafe { v[j].assume_init() };
        }
    }
    hsum8(&x)
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn hsum128(s: __m128i) -> i32 {
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    _mm_cvtsi128_si32(s)
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn hsum(v: __m256i) -> i32 {
    hsum128(_mm_add_epi32(
        _mm256_castsi256_si128(v),
        _mm256_extracti128_si256(v, 1),
    ))
}

// ---- Activation quantisation. ----

/// Quantises 32 values to Q8 with the results of [`super::blocks::quantize_block_q8`], bit
/// for bit (tested): the largest magnitude by `max` (exact in any order; `vmaxps` returns
/// its second operand where either is NaN, so NaN values are skipped as `f32::max` skips
/// them), then per value the same product `v * (127 / amax)`, rounded half to even, NaN
/// to 0 as Rust's `as i8` does, clamped to [-127, 127].
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn quantize_block_q8(x: &[f32; 32], q: &mut [i8; 32]) -> (u16, u16) {
    let mut v = [_mm256_setzero_ps(); 4];
    for (k, v) in v.iter_mut().enumerate() {
        *v = ld256_f32(&x[8 * k..]);
    }
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    for &v in &v {
        m = _mm256_max_ps(_mm256_andnot_ps(sign, v), m);
    }
    let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
    let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let amax = _mm_cvtss_f32(_mm_max_ss(m2, _mm_shuffle_ps::<1>(m2, m2)));
    let d = amax / 127.0;
    let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let (lo, hi) = (_mm256_set1_ps(-127.0), _mm256_set1_ps(127.0));
    let mut iv = [_mm256_setzero_si256(); 4];
    for k in 0..4 {
        let t = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(v[k], id),
        );
        let t = _mm256_and_ps(t, _mm256_cmp_ps::<_CMP_ORD_Q>(t, t));
        iv[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(t, lo), hi));
    }
    let sum = hsum(_mm256_add_epi32(
        _mm256_add_epi32(iv[0], iv[1]),
        _mm256_add_epi32(iv[2], iv[3]),
    ));
    // `packs` interleaves 128-bit halves; the permutation puts the 32 values back in order.
    let p = _mm256_packs_epi16(
        _mm256_packs_epi32(iv[0], iv[1]),
        _mm256_packs_epi32(iv[2], iv[3]),
    );
    let p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    // SAFETY: `q` has 32 writable bytes; unaligned stores have no alignment requirement.
    unsafe { _mm256_storeu_si256(q.as_mut_ptr().cast(), p) };
    super::blocks::q8_scales(d, sum)
}

/// Quantises whole blocks of `x` to Q8 as [`super::blocks::quantize_block_q8`] does:
/// quants `qs`, scales `d`, and when `s` is not empty each block's `d * sum` (Q8_1).
///
/// # Panics
///
/// If this CPU lacks the features of this module, or the lengths do not match.
pub(crate) fn quantize_q8_blocks(x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    assert!(available(), "AVX2, FMA and F16C are required");
    assert!(x.len() == qs.len() && x.len() == 32 * d.len());
    assert!(s.is_empty() || s.len() == d.len());
    for (i, (xb, qb)) in x.chunks_exact(32).zip(qs.chunks_exact_mut(32)).enumerate() {
        // SAFETY: the CPU has AVX2, FMA and F16C (asserted above).
        let (dh, sh) = unsafe { quantize_block_q8(xb.try_into().unwrap(), qb.try_into().unwrap()) };
        d[i] = super::blocks::f16_to_f32(dh);
        if !s.is_empty() {
            s[i] = super::blocks::f16_to_f32(sh);
        }
    }
}

// ---- 32-element block formats. ----

const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q5_0: u8 = 2;
const Q8_0: u8 = 3;

const fn block_bytes(t: u8) -> usize {
    match t {
        Q4_0 => 18,
        Q4_1 => 20,
        Q5_0 => 22,
        _ => 34,
    }
}

/// Integer dot of one weight block with 32 activations, as 8 i32 partial sums.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn block_isums<const T: u8>(b: &[u8], y: &[i8]) -> __m256i {
    let y = ld256_i8(y);
    match T {
        Q4_0 => {
            let x = _mm256_sub_epi8(nibbles(&b[2..18]), _mm256_set1_epi8(8));
            mul_sum_i8(x, y)
        }
        Q4_1 => mul_sum_u8_i8(nibbles(&b[4..20]), y),
        Q5_0 => {
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            // nibble | 0xF0 where the fifth bit is clear: as i8 that is (nibble | bit << 4) - 16.
            let hi = _mm256_andnot_si256(bytes_from_bits(qh), _mm256_set1_epi8(0xF0u8 as i8));
            mul_sum_i8(_mm256_or_si256(nibbles(&b[6..22]), hi), y)
        }
        _ => mul_sum_i8(ld256(&b[2..34]), y),
    }
}

/// Canonical terms of 8 consecutive blocks `g` (8 blocks of `T`) against 8 activation
/// blocks (`y`: 256 values, `da`/`sa`: 8 scales/sums): lane k is block k's term.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn group_terms<const T: u8>(g: &[u8], y: &[i8], da: &[f32], sa: &[f32]) -> __m256 {
    let bb = block_bytes(T);
    let mut v = [_mm256_setzero_si256(); 8];
    for (k, v) in v.iter_mut().enumerate() {
        *v = block_isums::<T>(&g[k * bb..(k + 1) * bb], &y[k * 32..(k + 1) * 32]);
    }
    let isum = _mm256_cvtepi32_ps(hsum8(&v));
    if T == Q4_1 {
        // (dw * da) * isum + mw * sa, as `term_dm`.
        let (dw, mw) = f16x8_pair(g, bb);
        let dd = _mm256_mul_ps(dw, ld256_f32(da));
        _mm256_add_ps(_mm256_mul_ps(dd, isum), _mm256_mul_ps(mw, ld256_f32(sa)))
    } else {
        // (dw * da) * isum, as `term_d`.
        _mm256_mul_ps(_mm256_mul_ps(f16x8(g, bb, 0), ld256_f32(da)), isum)
    }
}

/// Row dots for the 32-element formats, `R` (weight row, activation row) pairs at once so
/// that their sums overlap. Blocks go in groups of 8: integer sums reduced together,
/// canonical terms computed lane-wise and added to the 8 canonical lanes. The last
/// remaining blocks go one by one.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn dot32<const T: u8, const R: usize>(w: [&[u8]; R], a: [ActRow<'_>; R]) -> [f32; R] {
    let bb = block_bytes(T);
    let nb = w[0].len() / bb;
    let full = nb / 8 * 8;
    for r in 0..R {
        assert!(w[r].len() == nb * bb && a[r].qs.len() == nb * 32 && a[r].d.len() == nb);
        assert!(T != Q4_1 || a[r].s.len() == nb);
    }
    // Each group's 8 terms are added to the 8 canonical lanes, held in one register per
    // row. The group slices are made from pointers checked once above (lengths asserted),
    // with lengths fixed per format, so the block loop in `group_terms` has no bounds
    // checks left.
    let mut acc = [_mm256_setzero_ps(); R];
    for g in (0..full).step_by(8) {
        for r in 0..R {
            // SAFETY: `g + 8 <= full <= nb`: blocks `g..g + 8` of the row (`bb` bytes each),
            // their 256 activations and 8 scales and sums lie in the slices, whose lengths
            // are asserted above (`s` only read for Q4_1, where its length is asserted).
            let t = unsafe {
                let gw = std::slice::from_raw_parts(w[r].as_ptr().add(g * bb), 8 * bb);
                let y = std::slice::from_raw_parts(a[r].qs.as_ptr().add(g * 32), 256);
                let da = std::slice::from_raw_parts(a[r].d.as_ptr().add(g), 8);
                let sa = if T == Q4_1 {
                    std::slice::from_raw_parts(a[r].s.as_ptr().add(g), 8)
                } else {
                    &[][..]
                };
                group_terms::<T>(gw, y, da, sa)
            };
            acc[r] = _mm256_add_ps(acc[r], t);
        }
    }
    let mut lanes = [[0f32; LANES]; R];
    for r in 0..R {
        store8(&mut lanes[r], acc[r]);
    }
    // The last blocks one at a time: the same terms, with scalar float operations.
    for i in full..nb {
        for r in 0..R {
            let b = &w[r][i * bb..(i + 1) * bb];
            let isum = hsum(block_isums::<T>(b, &a[r].qs[i * 32..(i + 1) * 32]));
            lanes[r][i % LANES] += if T == Q4_1 {
                term_dm(f16_1(b, 0), a[r].d[i], isum, f16_1(b, 2), a[r].s[i])
            } else {
                term_d(f16_1(b, 0), a[r].d[i], isum)
            };
        }
    }
    let mut out = [0f32; R];
    for r in 0..R {
        out[r] = fold_lanes(&lanes[r]);
    }
    out
}

macro_rules! dot32_fns {
    ($($one:ident, $two:ident => $t:ident;)*) => {$(
        #[target_feature(enable = "avx2,fma,f16c")]
        #[inline]
        fn $one(w: &[u8], a: ActRow<'_>) -> f32 {
            let [s] = dot32::<$t, 1>([w], [a]);
            s
        }

        #[target_feature(enable = "avx2,fma,f16c")]
        #[inline]
        fn $two(w: [&[u8]; 2], a: [ActRow<'_>; 2]) -> [f32; 2] {
            dot32::<$t, 2>(w, a)
        }
    )*};
}

dot32_fns! {
    dot_q4_0, dot2_q4_0 => Q4_0;
    dot_q4_1, dot2_q4_1 => Q4_1;
    dot_q5_0, dot2_q5_0 => Q5_0;
    dot_q8_0, dot2_q8_0 => Q8_0;
}

// ---- K-quants. ----

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn dot_q4k(w: &[u8], a: ActRow<'_>) -> f32 {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let nb = w.len() / 144;
    let (y, da, bsums) = (&a.qs[..nb * 256], &a.d[..nb], &a.bsums[..nb * 16]);
    let m4 = _mm256_set1_epi8(0xF);
    let mut lanes = [0f32; LANES];
    for i in 0..nb {
        let b = &w[i * 144..(i + 1) * 144];
        let y = &y[i * 256..(i + 1) * 256];
        // Unpack the 12 scale bytes into 8 scales then 8 mins (llama.cpp's utmp trick).
        let u =
            |k: usize| u32::from_le_bytes([b[4 + 4 * k], b[5 + 4 * k], b[6 + 4 * k], b[7 + 4 * k]]);
        let (u0, u1, u2) = (u(0), u(1), u(2));
        let m_hi = ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4);
        let m_lo = u1 & KMASK1;
        let s_hi = (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4);
        let s_lo = u0 & KMASK1;
        let mins_scales = _mm256_cvtepu8_epi16(_mm_set_epi32(
            m_hi as i32,
            m_lo as i32,
            s_hi as i32,
            s_lo as i32,
        ));
        // Sums of activation pairs of 16 (one per 32-element sub-block) times the mins.
        let q8sums = ld256_i16(&bsums[i * 16..(i + 1) * 16]);
        let q8s = _mm_hadd_epi16(
            _mm256_castsi256_si128(q8sums),
            _mm256_extracti128_si256(q8sums, 1),
        );
        let imin = hsum128(_mm_madd_epi16(
            _mm256_extracti128_si256(mins_scales, 1),
            q8s,
        ));
        let sc = _mm256_castsi256_si128(mins_scales);
        let scales = _mm256_set_m128i(sc, sc);
        let mut sumi = _mm256_setzero_si256();
        for j in 0..4 {
            let pick = |s: usize| _mm256_set1_epi16((((2 * s + 1) << 8) | (2 * s)) as i16);
            let scale_l = _mm256_shuffle_epi8(scales, pick(2 * j));
            let scale_h = _mm256_shuffle_epi8(scales, pick(2 * j + 1));
            let q4 = ld256(&b[16 + 32 * j..16 + 32 * j + 32]);
            let q4l = _mm256_and_si256(q4, m4);
            let q4h = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            let p_l = _mm256_maddubs_epi16(q4l, ld256_i8(&y[64 * j..64 * j + 32]));
            let p_h = _mm256_maddubs_epi16(q4h, ld256_i8(&y[64 * j + 32..64 * j + 64]));
            let p_l = _mm256_madd_epi16(scale_l, p_l);
            let p_h = _mm256_madd_epi16(scale_h, p_h);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_l, p_h));
        }
        lanes[i % LANES] += term_k4(f16_1(b, 0), f16_1(b, 2), da[i], hsum(sumi), imin);
    }
    fold_lanes(&lanes)
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn dot_q6k(w: &[u8], a: ActRow<'_>) -> f32 {
    let nb = w.len() / 210;
    let (y, da, bsums) = (&a.qs[..nb * 256], &a.d[..nb], &a.bsums[..nb * 16]);
    let m4 = _mm256_set1_epi8(0xF);
    let m2 = _mm256_set1_epi8(3);
    let mut lanes = [0f32; LANES];
    for i in 0..nb {
        let b = &w[i * 210..(i + 1) * 210];
        let y = &y[i * 256..(i + 1) * 256];
        let scales = ld128(&b[192..208]);
        // sum((q - 32) * y) = sum(q * y) - 32 * sum(y): the second part per group of 16
        // from the activation block sums, sc[g] * bsums[g] (exact in i32).
        let sc_bsums = _mm256_madd_epi16(
            _mm256_cvtepi8_epi16(scales),
            ld256_i16(&bsums[i * 16..(i + 1) * 16]),
        );
        let mut sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sc_bsums, 5));
        for j in 0..2 {
            let ql = &b[64 * j..64 * j + 64];
            let qh = ld256(&b[128 + 32 * j..128 + 32 * j + 32]);
            let y = &y[128 * j..128 * j + 128];
            let q4b1 = ld256(&ql[..32]);
            let q4b2 = ld256(&ql[32..]);
            let hbits = |s: i32| {
                let v = match s {
                    0 => qh,
                    2 => _mm256_srli_epi16(qh, 2),
                    4 => _mm256_srli_epi16(qh, 4),
                    _ => _mm256_srli_epi16(qh, 6),
                };
                _mm256_slli_epi16(_mm256_and_si256(v, m2), 4)
            };
            let q = [
                _mm256_or_si256(_mm256_and_si256(q4b1, m4), hbits(0)),
                _mm256_or_si256(_mm256_and_si256(q4b2, m4), hbits(2)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4b1, 4), m4), hbits(4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4b2, 4), m4), hbits(6)),
            ];
            for (k, &q) in q.iter().enumerate() {
                // q <= 63: pairs of q * y fit i16.
                let p = _mm256_maddubs_epi16(q, ld256_i8(&y[32 * k..32 * k + 32]));
                let s = 4 * j + k;
                let pick = _mm_set_epi64x(
                    (2 * s as i64 + 1) * 0x0101_0101_0101_0101,
                    (2 * s as i64) * 0x0101_0101_0101_0101,
                );
                let sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, pick));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sc, p));
            }
        }
        lanes[i % LANES] += term_d(f16_1(b, 208), da[i], hsum(sumi));
    }
    fold_lanes(&lanes)
}

// ---- Kernels. ----

/// Two K-quant dots, one after the other (their per-super-block chains are short).
macro_rules! pair_fn {
    ($($two:ident => $one:ident;)*) => {$(
        #[target_feature(enable = "avx2,fma,f16c")]
        #[inline]
        fn $two(w: [&[u8]; 2], a: [ActRow<'_>; 2]) -> [f32; 2] {
            [$one(w[0], a[0]), $one(w[1], a[1])]
        }
    )*};
}

pair_fn! {
    dot2_q4k => dot_q4k;
    dot2_q6k => dot_q6k;
}

quant_kernel!(#[target_feature(enable = "avx2,fma,f16c")] fn tf_q4_0 = dot_q4_0, dot2_q4_0);
quant_kernel!(#[target_feature(enable = "avx2,fma,f16c")] fn tf_q4_1 = dot_q4_1, dot2_q4_1);
quant_kernel!(#[target_feature(enable = "avx2,fma,f16c")] fn tf_q5_0 = dot_q5_0, dot2_q5_0);
quant_kernel!(#[target_feature(enable = "avx2,fma,f16c")] fn tf_q8_0 = dot_q8_0, dot2_q8_0);
quant_kernel!(#[target_feature(enable = "avx2,fma,f16c")] fn tf_q4k = dot_q4k, dot2_q4k);
quant_kernel!(#[target_feature(enable = "avx2,fma,f16c")] fn tf_q6k = dot_q6k, dot2_q6k);

// ---- K-quant rows unpacked for the GEMM kernels. ----

/// `Q4_K` and `Q6_K` in the type codes of the GEMM kernels.
const Q4K: u8 = 4;
const Q6K: u8 = 5;

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn st256(out: &mut [u8], v: __m256i) {
    let out = &mut out[..32];
    // SAFETY: `out` has room for 32 bytes; unaligned stores have no alignment requirement.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) };
}

/// The 8 vectors of 32 unsigned codes of one K-quant super-block (`b`: its GGUF bytes), in
/// element order.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn sb_vectors<const T: u8>(b: &[u8]) -> [__m256i; 8] {
    let m4 = _mm256_set1_epi8(0xF);
    let mut v = [_mm256_setzero_si256(); 8];
    if T == Q4K {
        let b: &[u8; 144] = b.try_into().expect("a Q4_K block");
        // Quant bytes 32j..32j + 32: low nibbles are sub-block 2j, high nibbles 2j + 1.
        for j in 0..4 {
            let q4 = ld256(&b[16 + 32 * j..]);
            v[2 * j] = _mm256_and_si256(q4, m4);
            v[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
        }
    } else {
        let b: &[u8; 210] = b.try_into().expect("a Q6_K block");
        let m2 = _mm256_set1_epi8(3);
        let hbits = |x: __m256i| _mm256_slli_epi16(_mm256_and_si256(x, m2), 4);
        for j in 0..2 {
            let qh = ld256(&b[128 + 32 * j..]);
            let q4b1 = ld256(&b[64 * j..]);
            let q4b2 = ld256(&b[64 * j + 32..]);
            v[4 * j] = _mm256_or_si256(_mm256_and_si256(q4b1, m4), hbits(qh));
            v[4 * j + 1] =
                _mm256_or_si256(_mm256_and_si256(q4b2, m4), hbits(_mm256_srli_epi16(qh, 2)));
            v[4 * j + 2] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(q4b1, 4), m4),
                hbits(_mm256_srli_epi16(qh, 4)),
            );
            v[4 * j + 3] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(q4b2, 4), m4),
                hbits(_mm256_srli_epi16(qh, 6)),
            );
        }
    }
    v
}

/// Q4_K's 8 sub-block scales (bytes 0-7) and 8 mins (bytes 8-15) from the 12 packed
/// scale bytes, as [`super::blocks::scale_min_k4`] reads them, 4 sub-blocks per `u32`.
fn scales_mins_k4(q: &[u8; 12]) -> [u8; 16] {
    let word = |i: usize| u32::from_le_bytes([q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]]);
    let (a, b, c) = (word(0), word(1), word(2));
    // Sub-blocks 0-3: the low 6 bits of bytes 0-3 (scales) and 4-7 (mins). Sub-blocks 4-7:
    // a nibble of bytes 8-11 plus the top 2 bits of bytes 0-3 (scales) or 4-7 (mins).
    let sc_lo = a & 0x3F3F_3F3F;
    let mn_lo = b & 0x3F3F_3F3F;
    let sc_hi = (c & 0x0F0F_0F0F) | (((a >> 6) & 0x0303_0303) << 4);
    let mn_hi = ((c >> 4) & 0x0F0F_0F0F) | (((b >> 6) & 0x0303_0303) << 4);
    let mut out = [0u8; 16];
    for (k, w) in [sc_lo, sc_hi, mn_lo, mn_hi].into_iter().enumerate() {
        out[4 * k..4 * k + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

// ---- GEMM for the 32-element formats: blocks transposed in groups of 8. ----
//
// Weights and activations are copied into one layout: 8 consecutive blocks (a "group",
// 256 bytes) stored so that byte `32 * m + 4 * k + j` is element `4 * m + j` of block `k`.
// The 32-bit lane `k` of the `m`-th vector of a group then holds 4 elements of block `k`,
// and accumulating the lane-wise 4-byte dot products over the 8 vectors of a group gives
// the 8 block sums directly, with no horizontal reduction. The integer sums are exact, so
// the canonical terms (lane `k`: block `k`'s term) and their sequential sum are unchanged.
//
// Weight bytes are unsigned (`maddubs`/`dpbusd` take the unsigned operand first): Q4_0,
// Q5_0 and (with VNNI) Q8_0 are stored plus an offset (8, 16, 128) that is taken off again
// with the activation block sums; on plain AVX2 Q8_0 keeps `|w|` and moves the sign of `w`
// onto the activations, as [`mul_sum_i8`].

/// Activation rows of a job in the group layout (buffers kept between tiles).
#[derive(Default, Debug)]
pub(crate) struct GemmActs {
    /// Quants, `nbp * 32` per row (blocks past the row's end are zero).
    q: Vec<u8>,
    /// Block scales, `nbp` per row (zero past the end).
    d: Vec<f32>,
    /// Q8_1 `s` per block, `nbp` per row (Q4_1 only).
    s: Vec<f32>,
    /// Integer sums of each block's quants, `nbp` per row.
    ys: Vec<i32>,
    /// When [`tail_pairs`] and there is one row (the only case whose weight rows share
    /// tail groups: the batched kernel pairs activation rows instead, `qp`): the last
    /// group of the row (256 bytes) with lanes 0-3 also in lanes 4-7.
    qd: Vec<u8>,
    /// When [`tail_pairs`]: for each row `t` but the last, lanes 0-3 of row `t`'s last
    /// group with lanes 0-3 of row `t + 1`'s in lanes 4-7 (256 bytes), for tail groups
    /// shared by two activation rows.
    qp: Vec<u8>,
    /// When [`tail_quads`]: for each row `t` but the last 3, lanes 0-1 of the last group
    /// of rows `t..t + 4`, row `t + k`'s in lanes `2k, 2k + 1` (256 bytes), for tail
    /// groups shared by four activation rows.
    qq: Vec<u8>,
    /// Whether `q`, `d`, `s` and `ys` are group-major (see [`prep_acts`]), and the rows.
    group_major: bool,
    rows: usize,
}

impl GemmActs {
    /// Byte offset in `q` of row `t`'s group `g` (rows of `nbp` blocks; see [`prep_acts`]).
    fn qo(&self, t: usize, g: usize, nbp: usize) -> usize {
        if self.group_major {
            (g * self.rows + t) * 256
        } else {
            t * nbp * 32 + g * 256
        }
    }

    /// Index in `d`, `ys` and `s` of row `t`'s block `b`.
    fn vo(&self, t: usize, b: usize, nbp: usize) -> usize {
        if self.group_major {
            ((b / 8) * self.rows + t) * 8 + b % 8
        } else {
            t * nbp + b
        }
    }
}

/// Up to [`GEMM_W`] weight rows in the group layout.
#[derive(Default)]
struct GemmW {
    /// Unsigned weight bytes, `nbp * 32` per row.
    q: Vec<u8>,
    /// AVX2 Q8_0 only: the signed weights (their signs move onto the activations).
    sgn: Vec<u8>,
    /// Weight scales `d`, `nbp` per row.
    d: Vec<f32>,
    /// Q4_1's `m`, `nbp` per row.
    m: Vec<f32>,
}

/// Most weight rows per microkernel step.
const GEMM_W: usize = 4;

/// The 256-byte group at byte `off` of `b`, as an array (one bounds check per group, none
/// per vector load).
#[inline]
fn group_at(b: &[u8], off: usize) -> &[u8; 256] {
    b[off..off + 256].try_into().expect("a 256-byte group")
}

/// Lanes 0-3 of `lo` in lanes 0-3 and lanes 0-3 of `hi` in lanes 4-7 (16 bytes each).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn pair128(lo: &[u8], hi: &[u8]) -> __m256i {
    _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(ld128(lo)), ld128(hi))
}

/// Lanes 0-3 of `p` in both halves.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bcast128(p: &[u8]) -> __m256i {
    let p = &p[..16];
    // SAFETY: `p` has 16 readable bytes; unaligned loads have no alignment requirement.
    _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(p.as_ptr().cast()) })
}

/// `i32` lanes 0-3 of `p` in both halves.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bcast128_i32(p: &[i32]) -> __m256i {
    let p = &p[..4];
    // SAFETY: `p` has 4 readable i32s (16 bytes); unaligned loads have no alignment
    // requirement.
    _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(p.as_ptr().cast()) })
}

/// `f32` lanes 0-3 of `p` in both halves.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bcast128_ps(p: &[f32]) -> __m256 {
    let p = &p[..4];
    // SAFETY: `p` has 4 readable f32s; unaligned loads have no alignment requirement.
    _mm256_broadcast_ps(unsafe { &*p.as_ptr().cast::<__m128>() })
}

/// `f32` lanes 0-3 of `lo` and of `hi`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn pair128_ps(lo: &[f32], hi: &[f32]) -> __m256 {
    let (lo, hi) = (&lo[..4], &hi[..4]);
    // SAFETY: both have 4 readable f32s; unaligned loads have no alignment requirement.
    unsafe { _mm256_loadu2_m128(hi.as_ptr(), lo.as_ptr()) }
}

/// Adds the canonical terms of a paired tail group (row 0's blocks in lanes 0-3, row 1's
/// in lanes 4-7, see [`tail_pairs`]; blocks `b..`) to both rows' lanes 0-3: `isums` the
/// integer sums per activation row `ts[c]`, `dw`/`mw` the rows' scales paired the same way;
/// the activations' scales and offsets are read in both halves. Each lane gets the same
/// float operations as it would in a group of its own, and the other lanes +0.0, so the
/// sums are unchanged. The two rows are `acc[p]` and `acc[p + 1]`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
#[allow(clippy::too_many_arguments)]
fn tail_pair_terms<const T: u8, const R: usize, const C: usize>(
    p: usize,
    isums: &[__m256i; C],
    (dw, mw): (__m256, __m256),
    vnni: bool,
    ga: &GemmActs,
    ts: [usize; C],
    b: usize,
    nbp: usize,
    acc: &mut [[__m256; C]; R],
) {
    for c in 0..C {
        let t = ts[c];
        let mut isum = isums[c];
        if let Some(sh) = offset_shift(T, vnni) {
            let ys = bcast128_i32(&ga.ys[ga.vo(t, b, nbp)..]);
            isum = _mm256_sub_epi32(isum, _mm256_sll_epi32(ys, _mm_cvtsi32_si128(sh)));
        }
        let da = bcast128_ps(&ga.d[ga.vo(t, b, nbp)..]);
        let mut term = _mm256_mul_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(isum));
        if T == Q4_1 {
            let sa = bcast128_ps(&ga.s[ga.vo(t, b, nbp)..]);
            term = _mm256_add_ps(term, _mm256_mul_ps(mw, sa));
        }
        let row0 = _mm256_blend_ps::<0xF0>(term, _mm256_setzero_ps());
        acc[p][c] = _mm256_add_ps(acc[p][c], row0);
        let row1 = _mm256_permute2f128_ps::<0x81>(term, term);
        acc[p + 1][c] = _mm256_add_ps(acc[p + 1][c], row1);
    }
}

/// Whether a row of `nb` blocks ends in a group of at most 4 blocks, which two weight
/// rows then share: one group of 8 lanes instead of two groups with 4 or more lanes of
/// zeros each (SmolLM2's 576 columns are 2 groups and 2 blocks, Gemma 3's 640 are 2
/// groups and 4 blocks).
const fn tail_pairs(nb: usize) -> bool {
    !nb.is_multiple_of(8) && nb % 8 <= 4
}

/// Whether a row of `nb` blocks ends in a group of at most 2 blocks, which four
/// activation rows then share (SmolLM2's 576 columns end in 2 blocks).
const fn tail_quads(nb: usize) -> bool {
    !nb.is_multiple_of(8) && nb % 8 <= 2
}

/// `N` items of `s` from `off`, as an array, without a bounds check in release builds.
///
/// # Safety
///
/// `off + N <= s.len()`.
#[inline]
unsafe fn at<T, const N: usize>(s: &[T], off: usize) -> &[T; N] {
    debug_assert!(off + N <= s.len());
    // SAFETY: the caller keeps `off..off + N` within `s`; `[T; N]` has `T`'s alignment.
    unsafe { &*s.as_ptr().add(off).cast::<[T; N]>() }
}

/// Vector `m` of `R` weight groups times the same vector of `C` activation groups,
/// `maddubs` products added to the i16 accumulators (callers keep them within i16).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn maddubs_step<const R: usize, const C: usize>(
    wg: &[&[u8; 256]; R],
    yg: &[&[u8; 256]; C],
    m: usize,
    a16: &mut [[__m256i; C]; R],
) {
    let mut y = [_mm256_setzero_si256(); C];
    for c in 0..C {
        y[c] = ld256(&yg[c][32 * m..]);
    }
    for r in 0..R {
        let w = ld256(&wg[r][32 * m..]);
        for c in 0..C {
            a16[r][c] = _mm256_add_epi16(a16[r][c], _mm256_maddubs_epi16(w, y[c]));
        }
    }
}

/// Stores 8 natural-order 32-byte blocks as one group.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn put_group(out: &mut [u8], v: &[__m256i; 8]) {
    // A loop rather than a `map` closure, which would not be inlined.
    let mut p = [_mm256_setzero_ps(); 8];
    for k in 0..8 {
        p[k] = _mm256_castsi256_ps(v[k]);
    }
    for (m, t) in transpose8(&p).into_iter().enumerate() {
        st256(&mut out[32 * m..], _mm256_castps_si256(t));
    }
}

/// Left shift that takes the weight offset of type `T` off (`None`: no offset).
const fn offset_shift(t: u8, vnni: bool) -> Option<i32> {
    match t {
        Q4_0 => Some(3),
        Q5_0 => Some(4),
        Q8_0 if vnni => Some(7),
        _ => None,
    }
}

/// Copies the activation rows of `job` into the group layout: row-major (row `t`'s groups
/// at `t * nbp * 32`, its scales, sums and `s` at `t * nbp`), or with `group_major` group
/// `g` of every row together (row `t`'s at `(g * n + t) * 256`, its 8 scales at
/// `(g * n + t) * 8`), so that the rows of a chunk sit at fixed offsets from one pointer.
/// With one row both layouts are the same.
#[target_feature(enable = "avx2,fma,f16c")]
fn prep_acts<const T: u8>(
    job: &Job<'_>,
    nb: usize,
    nbp: usize,
    group_major: bool,
    ga: &mut GemmActs,
) {
    let n = job.t1 - job.t0;
    ga.group_major = group_major;
    ga.rows = n;
    ga.q.resize(n * nbp * 32, 0);
    ga.d.resize(n * nbp, 0.0);
    ga.s.resize(if T == Q4_1 { n * nbp } else { 0 }, 0.0);
    ga.ys.resize(n * nbp, 0);
    let row_pairs = tail_pairs(nb) && n == 1;
    ga.qd.resize(if row_pairs { 256 } else { 0 }, 0);
    for t in 0..n {
        let a = job.acts.row(job.t0 + t);
        assert!(a.qs.len() == nb * 32 && a.d.len() == nb);
        assert!(T != Q4_1 || a.s.len() == nb);
        for g in 0..nbp / 8 {
            let mut v = [_mm256_setzero_si256(); 8];
            for (k, v) in v.iter_mut().enumerate() {
                let b = 8 * g + k;
                if b < nb {
                    *v = ld256_i8(&a.qs[32 * b..]);
                }
            }
            let o = ga.qo(t, g, nbp);
            put_group(&mut ga.q[o..o + 256], &v);
        }
        for b in 0..nbp {
            let i = ga.vo(t, b, nbp);
            ga.d[i] = if b < nb { a.d[b] } else { 0.0 };
            ga.ys[i] = if b < nb {
                let mut sum = 0i32;
                for &v in &a.qs[32 * b..32 * b + 32] {
                    sum += i32::from(v);
                }
                sum
            } else {
                0
            };
            if T == Q4_1 {
                ga.s[i] = if b < nb { a.s[b] } else { 0.0 };
            }
        }
        if row_pairs {
            let last = &ga.q[ga.qo(t, nbp / 8 - 1, nbp)..][..256];
            let qd = &mut ga.qd[t * 256..(t + 1) * 256];
            for v in 0..8 {
                st256(&mut qd[32 * v..], bcast128(&last[32 * v..]));
            }
        }
    }
    let pairs = if tail_pairs(nb) {
        n.saturating_sub(1)
    } else {
        0
    };
    ga.qp.resize(pairs * 256, 0);
    let last = |ga: &GemmActs, t: usize| ga.qo(t, nbp / 8 - 1, nbp);
    for t in 0..pairs {
        let (lo, hi) = (&ga.q[last(ga, t)..], &ga.q[last(ga, t + 1)..]);
        for v in 0..8 {
            st256(
                &mut ga.qp[t * 256 + 32 * v..],
                pair128(&lo[32 * v..], &hi[32 * v..]),
            );
        }
    }
    let quads = if tail_quads(nb) {
        n.saturating_sub(3)
    } else {
        0
    };
    ga.qq.resize(quads * 256, 0);
    for t in 0..quads {
        for v in 0..8 {
            // Lanes 0-1 of vector `v` of each row's last group: its first 8 bytes.
            let mut quad = [0u8; 32];
            for k in 0..4 {
                let o = last(ga, t + k) + 32 * v;
                quad[8 * k..8 * k + 8].copy_from_slice(&ga.q[o..o + 8]);
            }
            ga.qq[t * 256 + 32 * v..t * 256 + 32 * v + 32].copy_from_slice(&quad);
        }
    }
}

/// Unpacks weight row `w` (`nb` blocks of type `T`) into slot `slot` of `gw`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn unpack_w<const T: u8, const V: bool>(
    w: &[u8],
    nb: usize,
    nbp: usize,
    gw: &mut GemmW,
    slot: usize,
) {
    let bb = block_bytes(T);
    let signed = !V && T == Q8_0;
    let q = &mut gw.q[slot * nbp * 32..(slot + 1) * nbp * 32];
    let d = &mut gw.d[slot * nbp..(slot + 1) * nbp];
    for g in 0..nbp / 8 {
        let mut v = [_mm256_setzero_si256(); 8];
        let mut sg = [_mm256_setzero_si256(); 8];
        for k in 0..8 {
            let i = 8 * g + k;
            if i >= nb {
                d[i] = 0.0;
                continue;
            }
            let b = &w[i * bb..(i + 1) * bb];
            d[i] = f16_1(b, 0);
            v[k] = match T {
                Q4_0 => nibbles(&b[2..18]),
                Q4_1 => nibbles(&b[4..20]),
                Q5_0 => {
                    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                    let hi = _mm256_and_si256(bytes_from_bits(qh), _mm256_set1_epi8(0x10));
                    _mm256_or_si256(nibbles(&b[6..22]), hi)
                }
                _ => {
                    let x = ld256(&b[2..34]);
                    if V {
                        _mm256_xor_si256(x, _mm256_set1_epi8(0x80u8 as i8))
                    } else {
                        sg[k] = x;
                        _mm256_sign_epi8(x, x)
                    }
                }
            };
        }
        put_group(&mut q[256 * g..], &v);
        if signed {
            put_group(&mut gw.sgn[slot * nbp * 32 + 256 * g..], &sg);
        }
    }
    if T == Q4_1 {
        let m = &mut gw.m[slot * nbp..(slot + 1) * nbp];
        for (i, m) in m.iter_mut().enumerate() {
            *m = if i < nb { f16_1(&w[i * bb..], 2) } else { 0.0 };
        }
    }
}

/// One 4-byte dot step on plain AVX2: `acc + madd(maddubs(w, y))`, with the sign of `s`
/// moved onto `y` first when `signed` (exact, see [`mul_sum_i8`]).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn step_avx2(acc: __m256i, w: __m256i, s: __m256i, y: __m256i, signed: bool) -> __m256i {
    let y = if signed { _mm256_sign_epi8(y, s) } else { y };
    _mm256_add_epi32(acc, mul_sum_u8_i8(w, y))
}

/// One 4-byte dot step with AVX-512 VNNI: `dpbusd` (exact in i32 for these ranges).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
#[inline]
fn step_vnni(acc: __m256i, w: __m256i, _s: __m256i, y: __m256i, _signed: bool) -> __m256i {
    _mm256_dpbusd_epi32(acc, w, y)
}

/// Whether this CPU has AVX-512 VNNI (with VL) on top of [`available`].
pub(crate) fn vnni_available() -> bool {
    available()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

/// Defines `$rows`: `R` weight rows (output rows `r0..r0 + R`, slots `0..R` of the
/// weight store) against activation rows `t0..t1`, `C` = 4 (with `$cmax` = 4), then 2,
/// then 1 at a time, with microkernel `$micro`. The K-quant microkernels take at most 2
/// (`$cmax` = 2): with 4, their i16 sums, scale pairs and activation vectors did not fit
/// the 16 AVX2 registers and were spilled to the stack on every step.
macro_rules! rows_fn {
    ($feat:literal, $rows:ident, $micro:ident, $w:ty, $a:ty, $cmax:literal) => {
        #[target_feature(enable = $feat)]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        fn $rows<const T: u8, const R: usize>(
            gw: &$w,
            ga: &$a,
            (t0, t1): (usize, usize),
            r0: usize,
            nb: usize,
            nbp: usize,
            stride: usize,
            out: &mut [f32],
        ) {
            // Loops rather than closures, which would not be inlined.
            let mut t = t0;
            while $cmax >= 4 && t + 4 <= t1 {
                let s = $micro::<T, R, 4>(gw, ga, [t, t + 1, t + 2, t + 3], nb, nbp);
                for c in 0..4 {
                    for r in 0..R {
                        out[(t + c) * stride + r0 + r] = s[r][c];
                    }
                }
                t += 4;
            }
            while t + 2 <= t1 {
                let s = $micro::<T, R, 2>(gw, ga, [t, t + 1], nb, nbp);
                for c in 0..2 {
                    for r in 0..R {
                        out[(t + c) * stride + r0 + r] = s[r][c];
                    }
                }
                t += 2;
            }
            if t < t1 {
                let s = $micro::<T, R, 1>(gw, ga, [t], nb, nbp);
                for r in 0..R {
                    out[t * stride + r0 + r] = s[r][0];
                }
            }
        }
    };
}

macro_rules! gemm32 {
    ($feat:literal, $v:literal, $rw:literal, $step:ident, $micro:ident, $rows:ident, $gemm:ident) => {
        /// Microkernel: `R` unpacked weight rows (slots `0..R`) times `C` activation rows
        /// `ts` of `ga`, each sum the canonical terms in the canonical lanes.
        #[target_feature(enable = $feat)]
        #[inline]
        fn $micro<const T: u8, const R: usize, const C: usize>(
            gw: &GemmW,
            ga: &GemmActs,
            ts: [usize; C],
            nb: usize,
            nbp: usize,
        ) -> [[f32; C]; R] {
            let signed = !$v && T == Q8_0;
            let gb = nbp * 32;
            let mut wq: [&[u8]; R] = [&[]; R];
            let mut ws: [&[u8]; R] = [&[]; R];
            for r in 0..R {
                wq[r] = &gw.q[r * gb..(r + 1) * gb];
                ws[r] = if signed {
                    &gw.sgn[r * gb..(r + 1) * gb]
                } else {
                    wq[r]
                };
            }
            let mut yq: [&[u8]; C] = [&[]; C];
            for c in 0..C {
                yq[c] = &ga.q[ts[c] * gb..(ts[c] + 1) * gb];
            }
            // The per-block arrays, checked once: the group loop reads them unchecked
            // (`at`), as it does the 256-byte groups of `wq`, `ws` and `yq` (`g < nbp / 8`).
            let mut dw_r: [&[f32]; R] = [&[]; R];
            let mut mw_r: [&[f32]; R] = [&[]; R];
            for r in 0..R {
                dw_r[r] = &gw.d[r * nbp..(r + 1) * nbp];
                if T == Q4_1 {
                    mw_r[r] = &gw.m[r * nbp..(r + 1) * nbp];
                }
            }
            let mut da_c: [&[f32]; C] = [&[]; C];
            let mut sa_c: [&[f32]; C] = [&[]; C];
            let mut ys_c: [&[i32]; C] = [&[]; C];
            for c in 0..C {
                let t = ts[c];
                da_c[c] = &ga.d[t * nbp..(t + 1) * nbp];
                ys_c[c] = &ga.ys[t * nbp..(t + 1) * nbp];
                if T == Q4_1 {
                    sa_c[c] = &ga.s[t * nbp..(t + 1) * nbp];
                }
            }
            let zero = _mm256_setzero_si256();
            let mut lanes = [[_mm256_setzero_ps(); C]; R];
            let pair_tail = R == 2 && tail_pairs(nb);
            let groups = if pair_tail { nbp / 8 - 1 } else { nbp / 8 };
            for g in 0..groups {
                let mut acc = [[zero; C]; R];
                if !$v && T != Q8_0 {
                    // Weight codes of at most 4 (Q4) or 5 (Q5_0) bits: the `maddubs`
                    // products are summed in i16 over a whole group (Q4: at most
                    // 8 * 2 * 15 * 127 = 30480) or half of one (Q5_0: 4 * 2 * 31 * 127 =
                    // 31496), then widened once: exact, with far fewer `madd`s.
                    let ones = _mm256_set1_epi16(1);
                    let per = if T == Q5_0 { 4 } else { 8 };
                    let mut a16 = [[zero; C]; R];
                    let mut yg: [&[u8; 256]; C] = [&[0; 256]; C];
                    for c in 0..C {
                        // SAFETY: `g < nbp / 8`; each slice holds `nbp / 8` groups.
                        yg[c] = unsafe { at::<u8, 256>(yq[c], 256 * g) };
                    }
                    let mut wg: [&[u8; 256]; R] = [&[0; 256]; R];
                    for r in 0..R {
                        // SAFETY: `g < nbp / 8`; each slice holds `nbp / 8` groups.
                        wg[r] = unsafe { at::<u8, 256>(wq[r], 256 * g) };
                    }
                    for m in 0..8 {
                        maddubs_step(&wg, &yg, m, &mut a16);
                        if (m + 1) % per == 0 {
                            for r in 0..R {
                                for c in 0..C {
                                    let s = _mm256_madd_epi16(a16[r][c], ones);
                                    acc[r][c] = _mm256_add_epi32(acc[r][c], s);
                                    a16[r][c] = zero;
                                }
                            }
                        }
                    }
                } else {
                    let mut yg: [&[u8; 256]; C] = [&[0; 256]; C];
                    for c in 0..C {
                        // SAFETY: `g < nbp / 8`; each slice holds `nbp / 8` groups.
                        yg[c] = unsafe { at::<u8, 256>(yq[c], 256 * g) };
                    }
                    let mut wg: [&[u8; 256]; R] = [&[0; 256]; R];
                    let mut sg: [&[u8; 256]; R] = [&[0; 256]; R];
                    for r in 0..R {
                        // SAFETY: `g < nbp / 8`; each slice holds `nbp / 8` groups.
                        wg[r] = unsafe { at::<u8, 256>(wq[r], 256 * g) };
                        // SAFETY: `g < nbp / 8`; each slice holds `nbp / 8` groups.
                        sg[r] = unsafe { at::<u8, 256>(ws[r], 256 * g) };
                    }
                    for m in 0..8 {
                        let mut y = [zero; C];
                        for c in 0..C {
                            y[c] = ld256(&yg[c][32 * m..]);
                        }
                        for r in 0..R {
                            let w = ld256(&wg[r][32 * m..]);
                            let s = if signed { ld256(&sg[r][32 * m..]) } else { w };
                            for c in 0..C {
                                acc[r][c] = $step(acc[r][c], w, s, y[c], signed);
                            }
                        }
                    }
                }
                let b = 8 * g;
                for r in 0..R {
                    // SAFETY: `b + 8 <= nbp`, the length of these per-row slices.
                    let dw = ld256_f32(unsafe { at::<f32, 8>(dw_r[r], b) });
                    for c in 0..C {
                        let mut isum = acc[r][c];
                        if let Some(sh) = offset_shift(T, $v) {
                            // SAFETY: `b + 8 <= nbp`, the length of these per-row slices.
                            let ys = ld256_i32(unsafe { at::<i32, 8>(ys_c[c], b) });
                            isum =
                                _mm256_sub_epi32(isum, _mm256_sll_epi32(ys, _mm_cvtsi32_si128(sh)));
                        }
                        // SAFETY: `b + 8 <= nbp`, the length of these per-row slices.
                        let da = ld256_f32(unsafe { at::<f32, 8>(da_c[c], b) });
                        let dd = _mm256_mul_ps(dw, da);
                        let mut term = _mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum));
                        if T == Q4_1 {
                            // (dw * da) * isum + mw * sa, as `term_dm`.
                            // SAFETY: `b + 8 <= nbp`, the length of these per-row slices.
                            let (mw, sa) =
                                unsafe { (at::<f32, 8>(mw_r[r], b), at::<f32, 8>(sa_c[c], b)) };
                            let ms = _mm256_mul_ps(ld256_f32(mw), ld256_f32(sa));
                            term = _mm256_add_ps(term, ms);
                        }
                        // Blocks past the row's end have zero scales: their terms are
                        // +0.0, which leaves a lane unchanged (a lane is never -0.0).
                        lanes[r][c] = _mm256_add_ps(lanes[r][c], term);
                    }
                }
            }
            if pair_tail {
                // The last group of both rows at once (`R - 1` is row 1: R = 2 here).
                let g = groups;
                let b = 8 * g;
                let (w0, w1) = (group_at(wq[0], 256 * g), group_at(wq[R - 1], 256 * g));
                let (s0, s1) = (group_at(ws[0], 256 * g), group_at(ws[R - 1], 256 * g));
                let mut yg: [&[u8; 256]; C] = [&[0; 256]; C];
                for c in 0..C {
                    // SAFETY: `g < nbp / 8`; each slice holds `nbp / 8` groups.
                    yg[c] = unsafe { at::<u8, 256>(yq[c], 256 * g) };
                }
                // i16 sums as in the full groups (at most 4 lanes per block here).
                let per = if T == Q5_0 { 4 } else { 8 };
                let ones = _mm256_set1_epi16(1);
                let mut acc = [zero; C];
                let mut a16 = [zero; C];
                for m in 0..8 {
                    let w = pair128(&w0[32 * m..], &w1[32 * m..]);
                    let s = if signed {
                        pair128(&s0[32 * m..], &s1[32 * m..])
                    } else {
                        w
                    };
                    for c in 0..C {
                        let y = bcast128(&yg[c][32 * m..]);
                        if !$v && T != Q8_0 {
                            a16[c] = _mm256_add_epi16(a16[c], _mm256_maddubs_epi16(w, y));
                            if (m + 1) % per == 0 {
                                let s = _mm256_madd_epi16(a16[c], ones);
                                acc[c] = _mm256_add_epi32(acc[c], s);
                                a16[c] = zero;
                            }
                        } else {
                            acc[c] = $step(acc[c], w, s, y, signed);
                        }
                    }
                }
                let dw = pair128_ps(&gw.d[b..], &gw.d[(R - 1) * nbp + b..]);
                let mw = if T == Q4_1 {
                    pair128_ps(&gw.m[b..], &gw.m[(R - 1) * nbp + b..])
                } else {
                    dw
                };
                tail_pair_terms::<T, R, C>(0, &acc, (dw, mw), $v, ga, ts, b, nbp, &mut lanes);
            }
            // A loop rather than `map` closures, which would not be inlined.
            let mut out = [[0f32; C]; R];
            for r in 0..R {
                for c in 0..C {
                    out[r][c] = fold_ps(lanes[r][c]);
                }
            }
            out
        }

        rows_fn!($feat, $rows, $micro, GemmW, GemmActs, 4);

        /// GEMM kernel for the 32-element formats (see the section comment).
        #[target_feature(enable = $feat)]
        fn $gemm<const T: u8>(job: &Job<'_>, out: &mut [f32]) {
            let rb = job.row_bytes;
            let nb = rb / block_bytes(T);
            let nbp = nb.next_multiple_of(8);
            let rows = job.w.len() / rb;
            let n = job.t1 - job.t0;
            // Buffers kept per thread between calls: fresh ones would be zeroed and
            // page-faulted in on every call.
            let (mut ga, mut gw) = GEMM32_BUFS.take();
            prep_acts::<T>(job, nb, nbp, false, &mut ga);
            let signed = !$v && T == Q8_0;
            gw.q.resize(GEMM_W * nbp * 32, 0);
            gw.sgn.resize(if signed { GEMM_W * nbp * 32 } else { 0 }, 0);
            gw.d.resize(GEMM_W * nbp, 0.0);
            gw.m.resize(if T == Q4_1 { GEMM_W * nbp } else { 0 }, 0.0);
            let mut t0 = 0;
            while t0 < n {
                let t1 = (t0 + job.tile).min(n);
                let mut r = 0;
                while r < rows {
                    let rr = if r + $rw <= rows {
                        $rw
                    } else if r + 2 <= rows {
                        2
                    } else {
                        1
                    };
                    // Few activation rows: the weights stream by once per tile, so
                    // fetch the rows after these while they are computed.
                    if n < UNPACK_MIN_ROWS {
                        if let Some(next) = job.w.get((r + rr) * rb..(r + 2 * rr) * rb) {
                            prefetch(next);
                        }
                    }
                    for k in 0..rr {
                        unpack_w::<T, $v>(
                            &job.w[(r + k) * rb..(r + k + 1) * rb],
                            nb,
                            nbp,
                            &mut gw,
                            k,
                        );
                    }
                    if rr == $rw {
                        $rows::<T, $rw>(&gw, &ga, (t0, t1), r, nb, nbp, job.stride, out);
                    } else if rr == 2 {
                        $rows::<T, 2>(&gw, &ga, (t0, t1), r, nb, nbp, job.stride, out);
                    } else {
                        $rows::<T, 1>(&gw, &ga, (t0, t1), r, nb, nbp, job.stride, out);
                    }
                    r += rr;
                }
                t0 = t1;
            }
            GEMM32_BUFS.set((ga, gw));
        }
    };
}

thread_local! {
    /// Activation and weight buffers of the 32-element GEMM, kept per thread.
    static GEMM32_BUFS: std::cell::RefCell<(GemmActs, GemmW)> =
        std::cell::RefCell::new((GemmActs::default(), GemmW::default()));
    /// Activation and weight buffers of the K-quant GEMM, kept per thread.
    static GEMMK_BUFS: std::cell::RefCell<(KActs, KW)> =
        std::cell::RefCell::new((KActs::default(), KW::default()));
}

gemm32!(
    "avx2,fma,f16c",
    false,
    2,
    step_avx2,
    micro_avx2,
    rows_avx2,
    gemm32_avx2
);
gemm32!(
    "avx2,fma,f16c,avx512f,avx512vl,avx512vnni",
    true,
    4,
    step_vnni,
    micro_vnni,
    rows_vnni,
    gemm32_vnni
);

// ---- GEMM for the K-quants: each super-block stored as one group. ----
//
// A super-block's 8 sub-blocks of 32 values are one group in the layout above, so lane
// `k` accumulates sub-block `k`'s integer dot (Q6_K: vectors 0-3 hold the first 16 values
// of each sub-block, vectors 4-7 the second 16, which have their own scales, so they go to
// two accumulators). Products with the weight scales as i32 lanes, summed over the lanes
// (`hsum8` of up to 8 super-blocks at once), give each super-block's exact `isum` (and
// Q4_K's `imin`); the canonical terms then go to the canonical lanes, as in
// `dot_q4k`/`dot_q6k`.

/// Activation rows of a K-quant job in the group layout.
#[derive(Default)]
struct KActs {
    /// Quants, `nb * 256` per row.
    q: Vec<u8>,
    /// Super-block scales, `nbp` per row (zero past the end).
    d: Vec<f32>,
    /// Per super-block 8 lanes: Q4_K the sums of the 8 sub-blocks; Q6_K the sums of the
    /// first 16 values of each sub-block.
    b0: Vec<i32>,
    /// Q6_K: per super-block 8 lanes, the sums of the second 16 values of each sub-block.
    b1: Vec<i32>,
    /// Per super-block the 16 sums of 16 values (`bsums`), as i16: lane `k` holds
    /// sub-block `k`'s two halves, ready for `madd` with i16 pairs of scales or mins.
    bp: Vec<i16>,
}

/// Up to [`GEMM_W`] K-quant weight rows in the group layout.
#[derive(Default)]
struct KW {
    /// Quants (unsigned), `nb * 256` per row.
    q: Vec<u8>,
    /// `d`, `nbp` per row.
    d: Vec<f32>,
    /// Q4_K's `dmin`, `nbp` per row.
    dm: Vec<f32>,
    /// Per super-block 8 lanes: Q4_K the sub-block scales; Q6_K the scales of the first
    /// 16 values of each sub-block.
    s0: Vec<i32>,
    /// Per super-block 8 lanes: Q4_K the sub-block mins; Q6_K the scales of the second 16.
    s1: Vec<i32>,
    /// Per super-block 3 x 16 i16 (AVX2 path), lane `k` of each: Q4_K `[sc_k, sc_k]`,
    /// `[min_k, min_k]`, unused; Q6_K `[sc_2k, sc_2k]`, `[sc_2k+1, sc_2k+1]`,
    /// `[sc_2k, sc_2k+1]`.
    p16: Vec<i16>,
}

/// Copies the activation rows of `job` into the K-quant group layout.
#[target_feature(enable = "avx2,fma,f16c")]
fn prep_kacts<const T: u8>(job: &Job<'_>, nb: usize, nbp: usize, ka: &mut KActs) {
    let n = job.t1 - job.t0;
    ka.q.resize(n * nb * 256, 0);
    ka.d.resize(n * nbp, 0.0);
    ka.b0.resize(n * nb * 8, 0);
    ka.b1.resize(if T == Q6K { n * nb * 8 } else { 0 }, 0);
    ka.bp.resize(n * nb * 16, 0);
    for t in 0..n {
        let a = job.acts.row(job.t0 + t);
        assert!(a.qs.len() == nb * 256 && a.d.len() == nb && a.bsums.len() == nb * 16);
        for i in 0..nb {
            let mut v = [_mm256_setzero_si256(); 8];
            for (k, v) in v.iter_mut().enumerate() {
                *v = ld256_i8(&a.qs[256 * i + 32 * k..]);
            }
            put_group(&mut ka.q[(t * nb + i) * 256..], &v);
            let bs = &a.bsums[16 * i..16 * i + 16];
            ka.bp[(t * nb + i) * 16..][..16].copy_from_slice(bs);
            let o = (t * nb + i) * 8;
            for k in 0..8 {
                let (lo, hi) = (i32::from(bs[2 * k]), i32::from(bs[2 * k + 1]));
                if T == Q4K {
                    ka.b0[o + k] = lo + hi;
                } else {
                    ka.b0[o + k] = lo;
                    ka.b1[o + k] = hi;
                }
            }
        }
        let d = &mut ka.d[t * nbp..(t + 1) * nbp];
        for (i, d) in d.iter_mut().enumerate() {
            *d = if i < nb { a.d[i] } else { 0.0 };
        }
    }
}

/// Unpacks K-quant weight row `w` into slot `slot` of `kw`: the codes in the group
/// layout, the scales as `p16` pairs, and with `V` (the VNNI path) as `s0` / `s1` lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn unpack_kw<const T: u8, const V: bool>(
    w: &[u8],
    nb: usize,
    nbp: usize,
    kw: &mut KW,
    slot: usize,
) {
    let bb = if T == Q4K { 144 } else { 210 };
    assert!(w.len() == nb * bb && nbp >= nb);
    let q = &mut kw.q[slot * nb * 256..(slot + 1) * nb * 256];
    let p16 = &mut kw.p16[slot * nb * 48..(slot + 1) * nb * 48];
    let d = &mut kw.d[slot * nbp..(slot + 1) * nbp];
    for (i, b) in w.chunks_exact(bb).enumerate() {
        put_group(&mut q[256 * i..256 * (i + 1)], &sb_vectors::<T>(b));
        let p: &mut [i16; 48] = (&mut p16[48 * i..48 * (i + 1)]).try_into().unwrap();
        // `x`: 16 scale bytes; `p16`'s three rows are bytes picked from it (`pick`), each
        // widened to i16 (zero- or sign-extended).
        let (x, signed) = if T == Q4K {
            d[i] = f16_1(b, 0);
            let sm = scales_mins_k4(b[4..16].try_into().unwrap());
            (ld128(&sm), false)
        } else {
            d[i] = f16_1(b, 208);
            (ld128(&b[192..208]), true)
        };
        let widen = |v: __m128i| {
            if signed {
                _mm256_cvtepi8_epi16(v)
            } else {
                _mm256_cvtepu8_epi16(v)
            }
        };
        // Q4_K: [sc_k, sc_k], [min_k, min_k], [sc_k, min_k]; Q6_K: [sc_2k, sc_2k],
        // [sc_2k+1, sc_2k+1], [sc_2k, sc_2k+1].
        let pick: [[i8; 16]; 3] = if T == Q4K {
            [
                [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7],
                [8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15],
                [0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15],
            ]
        } else {
            [
                [0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14, 14],
                [1, 1, 3, 3, 5, 5, 7, 7, 9, 9, 11, 11, 13, 13, 15, 15],
                [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            ]
        };
        for (k, pick) in pick.iter().enumerate() {
            // SAFETY: `pick` is 16 bytes; unaligned loads have no alignment requirement.
            let idx = unsafe { _mm_loadu_si128(pick.as_ptr().cast()) };
            let v = widen(_mm_shuffle_epi8(x, idx));
            // SAFETY: `p` has 48 i16s, row `k` 16 of them at `16 * k`.
            unsafe { _mm256_storeu_si256(p.as_mut_ptr().add(16 * k).cast(), v) };
        }
        if V {
            // The VNNI path's i32 lanes: lane `k` of `s0` / `s1` as the first / second i16
            // of lane `k` of `p16`'s third row.
            let o = (slot * nb + i) * 8;
            for k in 0..8 {
                kw.s0[o + k] = i32::from(p[32 + 2 * k]);
                kw.s1[o + k] = i32::from(p[32 + 2 * k + 1]);
            }
        }
        if T == Q4K {
            kw.dm[slot * nbp + i] = f16_1(b, 2);
        }
    }
    d[nb..].fill(0.0);
    if T == Q4K {
        kw.dm[slot * nbp + nb..(slot + 1) * nbp].fill(0.0);
    }
}

macro_rules! gemmk {
    ($feat:literal, $v:literal, $rw:literal, $step:ident, $micro:ident, $rows:ident, $gemm:ident) => {
        /// Microkernel: `R` weight rows (slots `0..R` of `kw`) times `C` activation rows
        /// `ts` of `ka`, each sum the canonical terms in the canonical lanes.
        #[target_feature(enable = $feat)]
        #[inline]
        fn $micro<const T: u8, const R: usize, const C: usize>(
            kw: &KW,
            ka: &KActs,
            ts: [usize; C],
            nb: usize,
            nbp: usize,
        ) -> [[f32; C]; R] {
            let zero = _mm256_setzero_si256();
            let mut lanes = [[_mm256_setzero_ps(); C]; R];
            for g in 0..nbp / 8 {
                // Lane-wise products for up to 8 super-blocks, summed over lanes below.
                // Left uninitialised: entries `j < valid` are written below and only
                // those are read (`hsum8_init`); zeroing 2 KiB per group showed up as
                // `memset` in profiles.
                let valid = (nb - 8 * g).min(8);
                let mut pi = [[[MaybeUninit::<__m256i>::uninit(); 8]; C]; R];
                let mut pm = [[[MaybeUninit::<__m256i>::uninit(); 8]; C]; R];
                for j in 0..valid {
                    let i = 8 * g + j;
                    let mut a0 = [[zero; C]; R];
                    let mut a1 = [[zero; C]; R];
                    let mut yg: [&[u8; 256]; C] = [&[0; 256]; C];
                    for c in 0..C {
                        yg[c] = group_at(&ka.q, (ts[c] * nb + i) * 256);
                    }
                    let mut wg: [&[u8; 256]; R] = [&[0; 256]; R];
                    for r in 0..R {
                        wg[r] = group_at(&kw.q, (r * nb + i) * 256);
                    }
                    if $v {
                        for m in 0..8 {
                            let mut y = [zero; C];
                            for c in 0..C {
                                y[c] = ld256(&yg[c][32 * m..]);
                            }
                            for r in 0..R {
                                let w = ld256(&wg[r][32 * m..]);
                                for c in 0..C {
                                    if T == Q6K && m >= 4 {
                                        a1[r][c] = $step(a1[r][c], w, w, y[c], false);
                                    } else {
                                        a0[r][c] = $step(a0[r][c], w, w, y[c], false);
                                    }
                                }
                            }
                        }
                    } else {
                        // `maddubs` products summed in i16 before widening: Q4_K over the
                        // whole super-block (8 * 2 * 15 * 127 = 30480), Q6_K over pairs of
                        // vectors (2 * 2 * 63 * 127 = 32004). They are widened by `madd`
                        // with the scales as i16 pairs, which also multiplies them (no
                        // `mullo_epi32`); the activation sums meet the mins (Q4_K) or the
                        // scales (Q6_K) the same way. All exact: the same integers as the
                        // i32 products of the other paths.
                        let per = if T == Q6K { 2 } else { 8 };
                        let mut a16 = [[zero; C]; R];
                        let mut qy = [[zero; C]; R];
                        let mut wsc = [[zero; 3]; R];
                        for r in 0..R {
                            let o = (r * nb + i) * 48;
                            for k in 0..3 {
                                wsc[r][k] = ld256_i16(&kw.p16[o + 16 * k..]);
                            }
                        }
                        for m in 0..8 {
                            maddubs_step(&wg, &yg, m, &mut a16);
                            if (m + 1) % per == 0 {
                                for r in 0..R {
                                    let sc = if T == Q6K && m >= 4 {
                                        wsc[r][1]
                                    } else {
                                        wsc[r][0]
                                    };
                                    for c in 0..C {
                                        let s = _mm256_madd_epi16(a16[r][c], sc);
                                        qy[r][c] = _mm256_add_epi32(qy[r][c], s);
                                        a16[r][c] = zero;
                                    }
                                }
                            }
                        }
                        for c in 0..C {
                            let bp = ld256_i16(&ka.bp[(ts[c] * nb + i) * 16..]);
                            for r in 0..R {
                                if T == Q4K {
                                    pi[r][c][j].write(qy[r][c]);
                                    pm[r][c][j].write(_mm256_madd_epi16(wsc[r][1], bp));
                                } else {
                                    // sum(sc * (q - 32) * y) = sum(sc * q * y) - 32 * sum(sc * ysum)
                                    let sy = _mm256_madd_epi16(wsc[r][2], bp);
                                    pi[r][c][j].write(_mm256_sub_epi32(
                                        qy[r][c],
                                        _mm256_slli_epi32(sy, 5),
                                    ));
                                }
                            }
                        }
                        continue;
                    }
                    for r in 0..R {
                        let o = (r * nb + i) * 8;
                        let s0 = ld256_i32(&kw.s0[o..]);
                        let s1 = ld256_i32(&kw.s1[o..]);
                        for c in 0..C {
                            let oa = (ts[c] * nb + i) * 8;
                            let b0 = ld256_i32(&ka.b0[oa..]);
                            if T == Q4K {
                                pi[r][c][j].write(_mm256_mullo_epi32(s0, a0[r][c]));
                                pm[r][c][j].write(_mm256_mullo_epi32(s1, b0));
                            } else {
                                // sum(sc * (q - 32) * y) = sum(sc * q * y) - 32 * sum(sc * ysum)
                                let b1 = ld256_i32(&ka.b1[oa..]);
                                let qy = _mm256_add_epi32(
                                    _mm256_mullo_epi32(s0, a0[r][c]),
                                    _mm256_mullo_epi32(s1, a1[r][c]),
                                );
                                let sy = _mm256_add_epi32(
                                    _mm256_mullo_epi32(s0, b0),
                                    _mm256_mullo_epi32(s1, b1),
                                );
                                pi[r][c][j].write(_mm256_sub_epi32(qy, _mm256_slli_epi32(sy, 5)));
                            }
                        }
                    }
                }
                let b = 8 * g;
                for r in 0..R {
                    let dw = ld256_f32(&kw.d[r * nbp + b..]);
                    for c in 0..C {
                        let da = ld256_f32(&ka.d[ts[c] * nbp + b..]);
                        // SAFETY: entries `j < valid` were written in the loop above.
                        let isum = _mm256_cvtepi32_ps(unsafe { hsum8_init(&pi[r][c], valid) });
                        // (dw * da) * isum [- (dminw * da) * imin], as `term_d`/`term_k4`.
                        let mut term = _mm256_mul_ps(_mm256_mul_ps(dw, da), isum);
                        if T == Q4K {
                            // SAFETY: as for `pi` (Q4_K writes both).
                            let imin = _mm256_cvtepi32_ps(unsafe { hsum8_init(&pm[r][c], valid) });
                            let dm = ld256_f32(&kw.dm[r * nbp + b..]);
                            term = _mm256_sub_ps(term, _mm256_mul_ps(_mm256_mul_ps(dm, da), imin));
                        }
                        // Super-blocks past the end have zero scales: +0.0 terms.
                        lanes[r][c] = _mm256_add_ps(lanes[r][c], term);
                    }
                }
            }
            let mut out = [[0f32; C]; R];
            for r in 0..R {
                for c in 0..C {
                    out[r][c] = fold_ps(lanes[r][c]);
                }
            }
            out
        }

        rows_fn!($feat, $rows, $micro, KW, KActs, 2);

        /// GEMM kernel for Q4_K and Q6_K (see the section comment).
        #[target_feature(enable = $feat)]
        fn $gemm<const T: u8>(job: &Job<'_>, out: &mut [f32]) {
            let rb = job.row_bytes;
            let nb = rb / if T == Q4K { 144 } else { 210 };
            let nbp = nb.next_multiple_of(8);
            let rows = job.w.len() / rb;
            let n = job.t1 - job.t0;
            let (mut ka, mut kw) = GEMMK_BUFS.take();
            prep_kacts::<T>(job, nb, nbp, &mut ka);
            kw.q.resize(GEMM_W * nb * 256, 0);
            kw.d.resize(GEMM_W * nbp, 0.0);
            kw.dm.resize(if T == Q4K { GEMM_W * nbp } else { 0 }, 0.0);
            kw.s0.resize(GEMM_W * nb * 8, 0);
            kw.s1.resize(GEMM_W * nb * 8, 0);
            kw.p16.resize(GEMM_W * nb * 48, 0);
            let mut t0 = 0;
            while t0 < n {
                let t1 = (t0 + job.tile).min(n);
                let mut r = 0;
                while r < rows {
                    let rr = if r + $rw <= rows { $rw } else { 1 };
                    // Few activation rows: the weights stream by once per tile, so fetch
                    // the rows [`VNNI_AHEAD`] on while these are computed.
                    if n < UNPACK_MIN_ROWS {
                        let ahead = r + VNNI_AHEAD;
                        if let Some(next) = job.w.get(ahead * rb..(ahead + rr) * rb) {
                            prefetch_l2(next);
                        }
                    }
                    for k in 0..rr {
                        unpack_kw::<T, $v>(
                            &job.w[(r + k) * rb..(r + k + 1) * rb],
                            nb,
                            nbp,
                            &mut kw,
                            k,
                        );
                    }
                    if rr == $rw {
                        $rows::<T, $rw>(&kw, &ka, (t0, t1), r, nb, nbp, job.stride, out);
                    } else {
                        $rows::<T, 1>(&kw, &ka, (t0, t1), r, nb, nbp, job.stride, out);
                    }
                    r += rr;
                }
                t0 = t1;
            }
            GEMMK_BUFS.set((ka, kw));
        }
    };
}

gemmk!(
    "avx2,fma,f16c",
    false,
    2,
    step_avx2,
    microk_avx2,
    rowsk_avx2,
    gemmk_avx2
);
gemmk!(
    "avx2,fma,f16c,avx512f,avx512vl,avx512vnni",
    true,
    2,
    step_vnni,
    microk_vnni,
    rowsk_vnni,
    gemmk_vnni
);

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn ld256_i32(p: &[i32]) -> __m256i {
    let p = &p[..8];
    // SAFETY: `p` has 8 readable i32s (32 bytes); unaligned loads have no alignment
    // requirement.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

// ---- F32 dot products (attention). ----

/// [`super::portable::weighted_rows`] with AVX2: the same products and additions in the
/// same order per element, with up to 64 outputs held in registers across all rows
/// instead of being loaded and stored for every row.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn weighted_rows(p: &[f32], v: &[f16], stride: usize, o: &mut [f32]) {
    let hd = o.len();
    if let Some(last) = p.len().checked_sub(1) {
        assert!(v.len() >= last * stride + hd);
    }
    let vp = v.as_ptr();
    // SAFETY (every `vp` read below): row `j < p.len()` column `c + x < hd` is at
    // `j * stride + c + x <= last * stride + hd - 1`, inside `v` (asserted above).
    let mut c = 0;
    while c + 64 <= hd {
        let mut acc = [_mm256_setzero_ps(); 8];
        for (j, &pj) in p.iter().enumerate() {
            prefetch_rows(
                vp.wrapping_add((j + ATT_PREFETCH) * stride + c),
                1,
                stride,
                64,
            );
            let pv = _mm256_set1_ps(pj);
            let row = unsafe { vp.add(j * stride + c) };
            for (k, a) in acc.iter_mut().enumerate() {
                let x = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(row.add(k * 8).cast()) });
                *a = _mm256_add_ps(*a, _mm256_mul_ps(pv, x));
            }
        }
        for (k, a) in acc.iter().enumerate() {
            store8(&mut o[c + k * 8..], *a);
        }
        c += 64;
    }
    while c + 8 <= hd {
        let mut acc = _mm256_setzero_ps();
        for (j, &pj) in p.iter().enumerate() {
            let x = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(vp.add(j * stride + c).cast()) });
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(pj), x));
        }
        store8(&mut o[c..], acc);
        c += 8;
    }
    if c < hd {
        let n = hd - c;
        let tail = &mut o[c..];
        tail.fill(0.0);
        for (j, &pj) in p.iter().enumerate() {
            for (acc, &b) in tail.iter_mut().zip(&v[j * stride + c..j * stride + c + n]) {
                *acc += pj * b.to_f32();
            }
        }
    }
}

/// Attention scores: `dot_f16(q, key j) * scale` for every key `j` in `keys`, key `j` being
/// `kc[j * stride + off..][..q.len()]`, pushed onto `out` in order. Each dot is
/// [`super::dot_f16`]'s sum (lane `l` of one register is canonical lane `l`, multiply
/// then add, no FMA, folded by [`fold_ps`], then the tail one by one); the key rows are
/// checked once and then read through pointers, four keys at a time.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn attn_scores(
    q: &[f32],
    kc: &[f16],
    stride: usize,
    off: usize,
    keys: std::ops::Range<usize>,
    scale: f32,
    out: &mut Vec<f32>,
) {
    if keys.is_empty() {
        return;
    }
    let hd = q.len();
    assert!(
        off + hd <= stride && keys.end * stride <= kc.len(),
        "keys inside the cache"
    );
    out.reserve(keys.len());
    let mut j = keys.start;
    while j + 4 <= keys.end {
        prefetch_rows(
            kc.as_ptr().wrapping_add((j + ATT_PREFETCH) * stride + off),
            4,
            stride,
            hd,
        );
        // SAFETY: keys `j..j + 4` are in `keys`, whose rows lie in `kc` (asserted above).
        for s in unsafe { score_keys::<4>(q, kc.as_ptr().add(j * stride + off), stride) } {
            out.push(s * scale);
        }
        j += 4;
    }
    while j < keys.end {
        // SAFETY: as above, for key `j`.
        let [s] = unsafe { score_keys::<1>(q, kc.as_ptr().add(j * stride + off), stride) };
        out.push(s * scale);
        j += 1;
    }
}

/// How many cache rows ahead attention prefetches keys and values: the rows of other
/// sequences and layers are read from memory, and one row's work is too short to hide
/// the latency of its own loads.
const ATT_PREFETCH: usize = 16;

/// Prefetches the `len` halves at `p` and at each of the next `rows - 1` rows `stride`
/// halves apart (no effect on results; a prefetch cannot fault, and addresses past the
/// cache only waste it).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn prefetch_rows(p: *const f16, rows: usize, stride: usize, len: usize) {
    for r in 0..rows {
        let row = p.wrapping_add(r * stride);
        let mut i = 0;
        while i < len {
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(i).cast());
            i += 32;
        }
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(len - 1).cast());
    }
}

/// `N` consecutive keys' [`super::dot_f16`] with `q`: key `n` is the `q.len()` halves at
/// `k.add(n * stride)`.
///
/// # Safety
///
/// Those `N` runs of `q.len()` halves are readable.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn score_keys<const N: usize>(q: &[f32], k: *const f16, stride: usize) -> [f32; N] {
    let hd = q.len();
    let full = hd / 8 * 8;
    let mut acc = [_mm256_setzero_ps(); N];
    let mut i = 0;
    while i < full {
        // SAFETY: `i + 8 <= hd`: inside `q` and inside every key (caller's contract).
        unsafe {
            let x = _mm256_loadu_ps(q.as_ptr().add(i));
            for (n, a) in acc.iter_mut().enumerate() {
                let kv = _mm256_cvtph_ps(_mm_loadu_si128(k.add(n * stride + i).cast()));
                *a = _mm256_add_ps(*a, _mm256_mul_ps(x, kv));
            }
        }
        i += 8;
    }
    let mut out = [0f32; N];
    for (n, o) in out.iter_mut().enumerate() {
        let mut sum = fold_ps(acc[n]);
        for (t, &qt) in q.iter().enumerate().skip(full) {
            // SAFETY: `t < hd`: inside key `n` (caller's contract).
            sum += qt * unsafe { *k.add(n * stride + t) }.to_f32();
        }
        *o = sum;
    }
    out
}

/// [`super::exp_shifted`] with AVX2: 8 values at a time through the same operations as
/// [`exp_nonpos`], the rest one by one; the sum is added in order in `f64`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn exp_shifted(xs: &mut [f32], max: f32) -> f64 {
    let mx = _mm256_set1_ps(max);
    let lo = _mm256_set1_ps(EXP_MIN);
    let mut chunks = xs.chunks_exact_mut(8);
    for c in &mut chunks {
        let x = _mm256_sub_ps(ld256_f32(c), mx);
        // `vmaxps` returns its second operand for NaN, as `f32::max` does.
        let e = exp_in_range_ps(_mm256_max_ps(x, lo));
        // `x >= EXP_MIN`, false for NaN, as in `exp_nonpos`.
        let keep = _mm256_cmp_ps::<_CMP_GE_OQ>(x, lo);
        store8(c, _mm256_and_ps(e, keep));
    }
    for x in chunks.into_remainder() {
        *x = exp_nonpos(*x - max);
    }
    let mut sum = 0.0f64;
    for &x in xs.iter() {
        sum += f64::from(x);
    }
    sum
}

/// `exp_in_range` of `super::portable` on 8 lanes: the same operations in the same order.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn exp_in_range_ps(xc: __m256) -> __m256 {
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        xc,
        _mm256_set1_ps(EXP_LOG2E),
    ));
    let r = _mm256_sub_ps(
        _mm256_sub_ps(xc, _mm256_mul_ps(n, _mm256_set1_ps(EXP_LN2_HI))),
        _mm256_mul_ps(n, _mm256_set1_ps(EXP_LN2_LO)),
    );
    let z = _mm256_mul_ps(r, r);
    let mut p = _mm256_set1_ps(EXP_P[0]);
    for &k in &EXP_P[1..] {
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(k));
    }
    let y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, z), r), _mm256_set1_ps(1.0));
    let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    _mm256_mul_ps(y, _mm256_castsi256_ps(bits))
}

/// [`super::swiglu`] with AVX2: 8 values at a time through [`exp_any`]'s operations,
/// then the same division and multiplication; the rest one by one.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn swiglu(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len());
    let (lo, hi) = (_mm256_set1_ps(EXP_MIN), _mm256_set1_ps(EXP_MAX));
    let one = _mm256_set1_ps(1.0);
    let mut gc = gate.chunks_exact_mut(8);
    let mut uc = up.chunks_exact(8);
    for (g, u) in (&mut gc).zip(&mut uc) {
        let gv = ld256_f32(g);
        let x = _mm256_xor_ps(gv, _mm256_set1_ps(-0.0));
        let e = exp_in_range_ps(_mm256_min_ps(_mm256_max_ps(x, lo), hi));
        // 0 below EXP_MIN and for NaN, infinity above EXP_MAX, as in `exp_any`.
        let e = _mm256_and_ps(e, _mm256_cmp_ps::<_CMP_GE_OQ>(x, lo));
        let e = _mm256_blendv_ps(
            e,
            _mm256_set1_ps(f32::INFINITY),
            _mm256_cmp_ps::<_CMP_GT_OQ>(x, hi),
        );
        let s = _mm256_div_ps(gv, _mm256_add_ps(one, e));
        store8(g, _mm256_mul_ps(s, ld256_f32(u)));
    }
    for (g, &u) in gc.into_remainder().iter_mut().zip(uc.remainder()) {
        *g = *g / (1.0 + exp_any(-*g)) * u;
    }
}

/// Rounds every value to half precision (round to nearest, ties to even) with F16C:
/// the same results as [`super::round_f16_nonneg`] (IEEE conversion both ways).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn round_f16_slice(xs: &mut [f32]) {
    let mut chunks = xs.chunks_exact_mut(8);
    for c in &mut chunks {
        let h = _mm256_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(ld256_f32(c));
        store8(c, _mm256_cvtph_ps(h));
    }
    let rem = chunks.into_remainder();
    if !rem.is_empty() {
        let mut t = [0f32; 8];
        t[..rem.len()].copy_from_slice(rem);
        let h = _mm256_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(ld256_f32(&t));
        store8(&mut t, _mm256_cvtph_ps(h));
        let n = rem.len();
        rem.copy_from_slice(&t[..n]);
    }
}

// ---- F32/F16 weights. ----

/// Transposes 8 vectors: lane `k` of result `j` is lane `j` of `r[k]`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn transpose8(r: &[__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    // Columns j (low half) and j + 4 (high half) of rows 0-3, then of rows 4-7.
    let a0 = _mm256_shuffle_ps(t0, t2, 0x44);
    let a1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    let a2 = _mm256_shuffle_ps(t1, t3, 0x44);
    let a3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    let b0 = _mm256_shuffle_ps(t4, t6, 0x44);
    let b1 = _mm256_shuffle_ps(t4, t6, 0xEE);
    let b2 = _mm256_shuffle_ps(t5, t7, 0x44);
    let b3 = _mm256_shuffle_ps(t5, t7, 0xEE);
    [
        _mm256_permute2f128_ps(a0, b0, 0x20),
        _mm256_permute2f128_ps(a1, b1, 0x20),
        _mm256_permute2f128_ps(a2, b2, 0x20),
        _mm256_permute2f128_ps(a3, b3, 0x20),
        _mm256_permute2f128_ps(a0, b0, 0x31),
        _mm256_permute2f128_ps(a1, b1, 0x31),
        _mm256_permute2f128_ps(a2, b2, 0x31),
        _mm256_permute2f128_ps(a3, b3, 0x31),
    ]
}

/// Elements `i..i + 8` of an F32 or F16 row.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load8<const F16: bool>(row: &[u8], i: usize) -> __m256 {
    if F16 {
        _mm256_cvtph_ps(ld128(&row[2 * i..2 * i + 16]))
    } else {
        _mm256_castsi256_ps(ld256(&row[4 * i..4 * i + 32]))
    }
}

/// 8 sequential dot products at once: lane k accumulates row k's products in element
/// order, exactly as the portable loop does (products rounded, then added one by one).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn dot8_float<const F16: bool>(w: &[u8], rb: usize, x: &[f32]) -> [f32; 8] {
    let n = x.len();
    let width = if F16 { 2 } else { 4 };
    let rows = portable::split_rows::<8>(w, rb, n * width);
    let main = n / 8 * 8;
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i < main {
        let xv = ld256_f32(&x[i..i + 8]);
        let mut p = [_mm256_setzero_ps(); 8];
        for (p, row) in p.iter_mut().zip(&rows) {
            *p = _mm256_mul_ps(load8::<F16>(row, i), xv);
        }
        for c in transpose8(&p) {
            acc = _mm256_add_ps(acc, c);
        }
        i += 8;
    }
    let mut a = [0f32; 8];
    // SAFETY: `a` has room for 8 f32s; unaligned stores have no alignment requirement.
    unsafe { _mm256_storeu_ps(a.as_mut_ptr(), acc) };
    for (a, row) in a.iter_mut().zip(&rows) {
        for (i, &xi) in x.iter().enumerate().skip(main) {
            *a += portable::load_float::<F16>(row, i) * xi;
        }
    }
    a
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn dot8_f32(w: &[u8], rb: usize, x: &[f32]) -> [f32; 8] {
    dot8_float::<false>(w, rb, x)
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn dot8_f16(w: &[u8], rb: usize, x: &[f32]) -> [f32; 8] {
    dot8_float::<true>(w, rb, x)
}

float_kernel!(#[target_feature(enable = "avx2,fma,f16c")] fn tf_f32<false> = dot8_f32);
float_kernel!(#[target_feature(enable = "avx2,fma,f16c")] fn tf_f16<true> = dot8_f16);

/// Safe entry points for the target-feature kernels.
macro_rules! entry {
    ($($name:ident => $inner:ident),* $(,)?) => {$(
        fn $name(job: &Job<'_>, out: &mut [f32]) {
            // SAFETY: these entry points are only handed out by `kernel`, which checks
            // `available()` (AVX2, FMA and F16C present) first.
            unsafe { $inner(job, out) }
        }
    )*};
}

entry! {
    k_f32 => tf_f32,
    k_f16 => tf_f16,
}

/// Safe entry points for the quantised kernels: one activation row goes to the row-dot
/// kernel, several to a GEMM kernel (`$gemm`, or `$vgemm` on the VNNI path).
macro_rules! entry_q {
    ($($name:ident, $vname:ident => $inner:ident, $gemm:ident, $vgemm:ident, $t:ident),* $(,)?) => {$(
        fn $name(job: &Job<'_>, out: &mut [f32]) {
            if job.t1 - job.t0 == 1 {
                // SAFETY: these entry points are only handed out by `kernel`, which checks
                // `available()` (AVX2, FMA and F16C present) first.
                unsafe { $inner(job, out) }
            } else {
                // SAFETY: as above.
                unsafe { $gemm::<$t>(job, out) }
            }
        }

        fn $vname(job: &Job<'_>, out: &mut [f32]) {
            if job.t1 - job.t0 == 1 {
                // SAFETY: these entry points are only handed out by `kernel`, which checks
                // `vnni_available()` (AVX2, FMA, F16C, AVX-512 F/VL/VNNI present) first.
                unsafe { $inner(job, out) }
            } else {
                // SAFETY: as above.
                unsafe { $vgemm::<$t>(job, out) }
            }
        }
    )*};
}

entry_q! {
    k_q4_0, v_q4_0 => tf_q4_0, gemm32_avx2, gemm32_vnni, Q4_0,
    k_q4_1, v_q4_1 => tf_q4_1, gemm32_avx2, gemm32_vnni, Q4_1,
    k_q5_0, v_q5_0 => tf_q5_0, gemm32_avx2, gemm32_vnni, Q5_0,
    k_q8_0, v_q8_0 => tf_q8_0, gemm32_avx2, gemm32_vnni, Q8_0,
    k_q4k, v_q4k => tf_q4k, gemmk_avx2, gemmk_vnni, Q4K,
    k_q6k, v_q6k => tf_q6k, gemmk_avx2, gemmk_vnni, Q6K,
}

/// The AVX2 kernel for a weight type (with the AVX-512 VNNI GEMM kernels when `vnni`), or
/// `None` when this CPU lacks the features.
pub(crate) fn kernel(dtype: GgmlType, vnni: bool) -> Option<Kernel> {
    if !available() || (vnni && !vnni_available()) {
        return None;
    }
    let pick = |k: Kernel, v: Kernel| if vnni { v } else { k };
    Some(match dtype {
        GgmlType::F32 => k_f32,
        GgmlType::F16 => k_f16,
        GgmlType::Q4_0 => pick(k_q4_0, v_q4_0),
        GgmlType::Q4_1 => pick(k_q4_1, v_q4_1),
        GgmlType::Q5_0 => pick(k_q5_0, v_q5_0),
        GgmlType::Q8_0 => pick(k_q8_0, v_q8_0),
        GgmlType::Q4K => pick(k_q4k, v_q4k),
        GgmlType::Q6K => pick(k_q6k, v_q6k),
        GgmlType::Q8_1 | GgmlType::Q8K => unreachable!("not a weight type"),
    })
}

/// Prefetches every cache line of `bytes` (SSE, part of x86-64's baseline).
#[inline(always)]
pub(crate) fn prefetch(bytes: &[u8]) {
    for off in (0..bytes.len()).step_by(64) {
        // SAFETY: `off` is inside `bytes`; a prefetch reads nothing architecturally and
        // cannot fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().add(off).cast()) };
    }
}

/// Prefetches every cache line of `bytes` into L2 (not L1).
#[inline(always)]
fn prefetch_l2(bytes: &[u8]) {
    for off in (0..bytes.len()).step_by(64) {
        // SAFETY: as in `prefetch`.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(bytes.as_ptr().add(off).cast()) };
    }
}

// ---- Packed 32-element formats (layout: `super::packed`). ----
//
// The weights are already in the group layout, so no row is re-laid per call: one
// activation row (decode) goes through 4 weight rows at a time (Q8_0: 2), several (prefill,
// batched decode) through 1 weight row x up to 8 activation rows. Rows ending in a short
// group (`tail_pairs`) share it: two weight rows against one activation row, or one weight
// row against two activation rows, four for a tail of 1-2 blocks (`act_shared_tail`).
// Q4_0/Q4_1 accumulate the
// `maddubs` products of a whole group in i16 lanes (at most 8 * 2 * 15 * 127 = 30480, as
// the activation quantisers keep |y| <= 127), Q5_0 of half a group (4 * 2 * 31 * 127 =
// 31496); Q8_0 widens every product with `madd`. The canonical terms are those of the
// other paths.

thread_local! {
    /// Activations in the group layout, kept per thread between calls.
    static PACKED_ACTS: std::cell::RefCell<GemmActs> = std::cell::RefCell::new(GemmActs::default());
}

/// Quant bytes per block in the packed layout.
const fn quant_bytes(t: u8) -> usize {
    match t {
        Q5_0 => 20,
        Q8_0 => 32,
        _ => 16,
    }
}

/// Bit `m` of every byte of `h` moved to bit 4, other bits cleared.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn fifth_bits(h: __m256i, m: usize) -> __m256i {
    // 16-bit shifts: bit m of the low byte lands on bit 4 and bit m of the high byte on
    // bit 12 (m < 8, so no bit crosses into the wrong byte's bit 4).
    let v = if m <= 4 {
        _mm256_sll_epi16(h, _mm_cvtsi32_si128(4 - m as i32))
    } else {
        _mm256_srl_epi16(h, _mm_cvtsi32_si128(m as i32 - 4))
    };
    _mm256_and_si256(v, _mm256_set1_epi8(0x10))
}

/// Mask of the first `lanes` 32-bit lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn tail_mask(lanes: usize) -> __m256i {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), idx)
}

/// The `lanes` 32-bit lanes at byte `off` of `w` (all 8: a plain load), other lanes zero.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn ld_lanes(w: &[u8], off: usize, lanes: usize, mask: __m256i) -> __m256i {
    if lanes == 8 {
        return ld256(&w[off..]);
    }
    let p = &w[off..off + 4 * lanes];
    // SAFETY: the mask selects the first `lanes` lanes, whose `4 * lanes` bytes `p` holds;
    // masked-off lanes are not read (and cannot fault).
    unsafe { _mm256_maskload_epi32(p.as_ptr().cast(), mask) }
}

/// Integer sums of a tail group of `lanes` blocks: `R` packed weight rows' tail bytes
/// (`wq`), each copied into a full group's layout with zero lanes after `lanes`, against
/// `C` activation groups (`y(c)`, 256 bytes each); lane `k` as in [`packed_isums_raw`].
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn tail_isums<'a, const T: u8, const R: usize, const C: usize>(
    wq: [&[u8]; R],
    lanes: usize,
    y: impl Fn(usize) -> &'a [u8],
) -> [[__m256i; C]; R] {
    let qb = quant_bytes(T);
    let mask = tail_mask(lanes);
    let mut grp = [[0u8; 256]; R];
    for r in 0..R {
        for v in 0..qb / 4 {
            st256(
                &mut grp[r][32 * v..],
                ld_lanes(wq[r], 4 * lanes * v, lanes, mask),
            );
        }
    }
    let mut wp = [std::ptr::null::<u8>(); R];
    for r in 0..R {
        wp[r] = grp[r].as_ptr();
    }
    let yp: [*const u8; C] = std::array::from_fn(|c| y(c)[..256].as_ptr());
    // SAFETY: each `grp[r]` has 256 >= 8 * quant_bytes(T) bytes, each activation slice
    // 256.
    unsafe { packed_isums_raw::<T, R, C>(wp, yp) }
}

/// Adds the canonical terms of tail group `g` (blocks `8g..`, `lanes` < 8 of them) to
/// `acc`: `wq` the rows' tail bytes, `sc` the rows' scale bytes (`d`, then Q4_1's `m` at
/// `m_off`), activation rows `ts`. (Full groups: [`packed_full_groups`].)
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
#[allow(clippy::too_many_arguments)]
fn packed_tail_group<const T: u8, const R: usize, const C: usize>(
    wq: [&[u8]; R],
    sc: [&[u8]; R],
    m_off: usize,
    lanes: usize,
    ga: &GemmActs,
    ts: [usize; C],
    g: usize,
    nbp: usize,
    acc: &mut [[__m256; C]; R],
) {
    let b = 8 * g;
    let isums = tail_isums::<T, R, C>(wq, lanes, |c| &ga.q[ga.qo(ts[c], g, nbp)..][..256]);
    for r in 0..R {
        // `lanes` scales, zero in the other lanes.
        let mut d = [0u8; 16];
        let mut m = [0u8; 16];
        for k in 0..lanes {
            d[2 * k] = sc[r][2 * (b + k)];
            d[2 * k + 1] = sc[r][2 * (b + k) + 1];
            if T == Q4_1 {
                m[2 * k] = sc[r][m_off + 2 * (b + k)];
                m[2 * k + 1] = sc[r][m_off + 2 * (b + k) + 1];
            }
        }
        let (dw, mw) = (_mm256_cvtph_ps(ld128(&d)), _mm256_cvtph_ps(ld128(&m)));
        for c in 0..C {
            let t = ts[c];
            let mut isum = isums[r][c];
            if let Some(sh) = offset_shift(T, false) {
                let ys = ld256_i32(&ga.ys[ga.vo(t, b, nbp)..]);
                isum = _mm256_sub_epi32(isum, _mm256_sll_epi32(ys, _mm_cvtsi32_si128(sh)));
            }
            // (dw * da) * isum [+ mw * sa], as `term_d` / `term_dm`.
            let dd = _mm256_mul_ps(dw, ld256_f32(&ga.d[ga.vo(t, b, nbp)..]));
            let mut term = _mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum));
            if T == Q4_1 {
                let ms = _mm256_mul_ps(mw, ld256_f32(&ga.s[ga.vo(t, b, nbp)..]));
                term = _mm256_add_ps(term, ms);
            }
            // Blocks past the row's end have zero weights and scales: +0.0 terms leave a
            // lane unchanged (a lane is never -0.0).
            acc[r][c] = _mm256_add_ps(acc[r][c], term);
        }
    }
}

/// Activation rows `t0..t0 + C` of a group-major [`GemmActs`] (see [`prep_acts`]) as one
/// pointer per buffer, checked once against it: row `t0 + c`'s group `g` is `256 * c +
/// gq * g` bytes from `y`, its blocks `8g..8g + 8` are `8 * c + gv * g` entries from `d`,
/// `ys` and `s`. The row offsets are constants, so a chunk's rows need no registers of
/// their own.
struct ActRows<'a, const C: usize> {
    t0: usize,
    y: *const u8,
    d: *const f32,
    ys: *const i32,
    /// Q4_1 only (else null).
    s: *const f32,
    gq: usize,
    gv: usize,
    /// With [`tail_pairs`] and `C` even: the pair group of rows `t0 + 2j`, `t0 + 2j + 1`
    /// is `512 * j` bytes from here (`ga.qp` holds one for every row but the last); else
    /// null.
    pair: *const u8,
    /// With [`tail_quads`] and `C` a multiple of 4: the quad group of rows `t0 + 4j..t0 +
    /// 4j + 4` is `1024 * j` bytes from here (`ga.qq`); else null.
    quad: *const u8,
    /// With `C == 1` and the one-row tail copy (`ga.qd`): that group; else null.
    one: *const u8,
    _ga: std::marker::PhantomData<&'a GemmActs>,
}

impl<'a, const C: usize> ActRows<'a, C> {
    /// Rows `t0..t0 + C` of `ga` (rows of `nbp` blocks).
    ///
    /// # Panics
    ///
    /// If `ga` is not group-major or the rows are not all in it.
    fn new<const T: u8>(ga: &'a GemmActs, t0: usize, nbp: usize) -> Self {
        let n = ga.rows;
        assert!(
            ga.group_major && t0 + C <= n,
            "rows of a group-major GemmActs"
        );
        assert!(ga.q.len() == n * nbp * 32 && ga.d.len() == n * nbp && ga.ys.len() == n * nbp);
        assert!(T != Q4_1 || ga.s.len() == n * nbp);
        // A pair group for every row but the last (`prep_acts`); the one-row copy for n = 1.
        let pairs = C.is_multiple_of(2) && (t0 + C - 1) * 256 <= ga.qp.len();
        let quads = C.is_multiple_of(4) && (t0 + C - 3) * 256 <= ga.qq.len();
        let one = C == 1 && (t0 + 1) * 256 <= ga.qd.len();
        Self {
            t0,
            y: ga.q[t0 * 256..].as_ptr(),
            d: ga.d[t0 * 8..].as_ptr(),
            ys: ga.ys[t0 * 8..].as_ptr(),
            s: if T == Q4_1 {
                ga.s[t0 * 8..].as_ptr()
            } else {
                std::ptr::null()
            },
            gq: n * 256,
            gv: n * 8,
            pair: if pairs {
                ga.qp[t0 * 256..].as_ptr()
            } else {
                std::ptr::null()
            },
            quad: if quads {
                ga.qq[t0 * 256..].as_ptr()
            } else {
                std::ptr::null()
            },
            one: if one {
                ga.qd[t0 * 256..].as_ptr()
            } else {
                std::ptr::null()
            },
            _ga: std::marker::PhantomData,
        }
    }
}

/// The full groups of [`packed_micro`], through raw pointers: the lengths are checked
/// once (the weight rows here, the activation rows in [`ActRows::new`]), so the group
/// loop has no bounds checks (they cost about a tenth of its instructions, and the
/// registers holding slice lengths).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn packed_full_groups<const T: u8, const R: usize, const C: usize>(
    w: [&[u8]; R],
    a: &ActRows<'_, C>,
    nb: usize,
    acc: &mut [[__m256; C]; R],
) {
    let qb = quant_bytes(T);
    let full = nb / 8;
    let mut wp = [std::ptr::null::<u8>(); R];
    let mut scp = [std::ptr::null::<u8>(); R];
    for r in 0..R {
        assert!(w[r].len() == nb * block_bytes(T), "a packed row");
        wp[r] = w[r].as_ptr();
        scp[r] = w[r][nb * qb..].as_ptr();
    }
    for g in 0..full {
        let b = 8 * g;
        // SAFETY: `g < nb / 8`, so group `g` of a packed row (`8 * qb` bytes at
        // `8 * qb * g`) and its 8 scales (16 bytes at `2 * b`, Q4_1's mins `2 * nb` further)
        // lie in the row, whose length is asserted above; activation group `g < nbp / 8`
        // of the rows of `a` (256 bytes each) and their 8 scales, sums and `s` lie in the
        // buffers (`ActRows::new`).
        unsafe {
            let mut wq = [std::ptr::null::<u8>(); R];
            for r in 0..R {
                wq[r] = wp[r].add(8 * qb * g);
            }
            let yg = a.y.add(a.gq * g);
            let y: [*const u8; C] = std::array::from_fn(|c| yg.add(256 * c));
            let (dg, ysg, sg) = (
                a.d.add(a.gv * g),
                a.ys.add(a.gv * g),
                a.s.wrapping_add(a.gv * g),
            );
            let isums = packed_isums_raw::<T, R, C>(wq, y);
            for r in 0..R {
                let dw = _mm256_cvtph_ps(_mm_loadu_si128(scp[r].add(2 * b).cast()));
                let mw = if T == Q4_1 {
                    _mm256_cvtph_ps(_mm_loadu_si128(scp[r].add(2 * nb + 2 * b).cast()))
                } else {
                    dw
                };
                for c in 0..C {
                    let mut isum = isums[r][c];
                    if let Some(sh) = offset_shift(T, false) {
                        let ys = _mm256_loadu_si256(ysg.add(8 * c).cast());
                        isum = _mm256_sub_epi32(isum, _mm256_sll_epi32(ys, _mm_cvtsi32_si128(sh)));
                    }
                    // (dw * da) * isum [+ mw * sa], as `term_d` / `term_dm`.
                    let dd = _mm256_mul_ps(dw, _mm256_loadu_ps(dg.add(8 * c)));
                    let mut term = _mm256_mul_ps(dd, _mm256_cvtepi32_ps(isum));
                    if T == Q4_1 {
                        let ms = _mm256_mul_ps(mw, _mm256_loadu_ps(sg.add(8 * c)));
                        term = _mm256_add_ps(term, ms);
                    }
                    acc[r][c] = _mm256_add_ps(acc[r][c], term);
                }
            }
        }
    }
}

/// Integer sums of one full group: `R` packed weight groups (`8 * quant_bytes(T)` bytes
/// each) against `C` activation groups (256 bytes each); lane `k` is block `k`'s sum of
/// unsigned weight codes times activations (offsets not yet taken off).
///
/// # Safety
///
/// Each `wq[r]` has `8 * quant_bytes(T)` readable bytes and each `y[c]` 256.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn packed_isums_raw<const T: u8, const R: usize, const C: usize>(
    wq: [*const u8; R],
    y: [*const u8; C],
) -> [[__m256i; C]; R] {
    // SAFETY (all loads below): vector `v` of a weight group is bytes `32 * v..` with
    // `v < quant_bytes(T) / 4`, of an activation group bytes `32 * v..` with `v < 8`: within
    // the caller's lengths.
    let ldw = |r: usize, v: usize| unsafe { _mm256_loadu_si256(wq[r].add(32 * v).cast()) };
    let ldy = |c: usize, v: usize| unsafe { _mm256_loadu_si256(y[c].add(32 * v).cast()) };
    let ones = _mm256_set1_epi16(1);
    let mut out = [[_mm256_setzero_si256(); C]; R];
    if T == Q8_0 {
        for m in 0..8 {
            let mut ym = [_mm256_setzero_si256(); C];
            for (c, ym) in ym.iter_mut().enumerate() {
                *ym = ldy(c, m);
            }
            for (r, out) in out.iter_mut().enumerate() {
                let w = ldw(r, m);
                let wa = _mm256_sign_epi8(w, w);
                for (out, &ym) in out.iter_mut().zip(&ym) {
                    let p = _mm256_maddubs_epi16(wa, _mm256_sign_epi8(ym, w));
                    *out = _mm256_add_epi32(*out, _mm256_madd_epi16(p, ones));
                }
            }
        }
        return out;
    }
    let low = _mm256_set1_epi8(0x0F);
    // One weight vector at a time (vector `v` < 4: the low nibbles of stored vector `v`,
    // else the high nibbles of stored vector `v - 4`), split once for the `C` activation
    // rows: `R * C` accumulators, `R` weight vectors and one activation vector are live,
    // so R = 2, C = 4 fits the 16 registers. The i16 sums hold: Q4 codes are at most 15
    // and activations at most 127 in magnitude, so 8 `maddubs` lanes sum to at most
    // 8 * 2 * 15 * 127 = 30480; Q5_0 codes reach 31, so its group is summed in two halves
    // of 4 vectors (4 * 2 * 31 * 127 = 31496), each widened on its own. Spelled out per
    // vector so that every shift count is a constant (a loop over a table of vector
    // numbers was not unrolled).
    let mut acc = [[_mm256_setzero_si256(); C]; R];
    macro_rules! step {
        ($v:literal) => {{
            let mut wv = [_mm256_setzero_si256(); R];
            for r in 0..R {
                let pk = ldw(r, $v % 4);
                let x = if $v < 4 {
                    pk
                } else {
                    _mm256_srli_epi16::<4>(pk)
                };
                wv[r] = _mm256_and_si256(x, low);
                if T == Q5_0 {
                    wv[r] = _mm256_or_si256(wv[r], fifth_bits(ldw(r, 4), $v));
                }
            }
            for c in 0..C {
                let yv = ldy(c, $v);
                for r in 0..R {
                    acc[r][c] = _mm256_add_epi16(acc[r][c], _mm256_maddubs_epi16(wv[r], yv));
                }
            }
        }};
    }
    let mut widen = |acc: &mut [[__m256i; C]; R]| {
        for r in 0..R {
            for c in 0..C {
                out[r][c] = _mm256_add_epi32(out[r][c], _mm256_madd_epi16(acc[r][c], ones));
                acc[r][c] = _mm256_setzero_si256();
            }
        }
    };
    if T == Q5_0 {
        step!(0);
        step!(1);
        step!(4);
        step!(5);
        widen(&mut acc);
        step!(2);
        step!(3);
        step!(6);
        step!(7);
    } else {
        step!(0);
        step!(1);
        step!(2);
        step!(3);
        step!(4);
        step!(5);
        step!(6);
        step!(7);
    }
    widen(&mut acc);
    out
}

/// The tail group of packed row `w` (`nb` blocks, a tail of at most `8 / S`; `sc` its
/// scales, then Q4_1's mins) against the `C` activation rows of `a`, `S` at a time
/// ([`act_shared_tail`]): the row's tail blocks and scales repeated `S` times, lanes
/// `8 / S` apart.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn shared_tail<const T: u8, const C: usize, const S: usize>(
    w: &[u8],
    sc: &[u8],
    a: &ActRows<'_, C>,
    nb: usize,
    nbp: usize,
    acc: &mut [[__m256; C]; 1],
) {
    let qb = quant_bytes(T);
    let (full, tail) = (nb / 8, nb % 8);
    debug_assert!(tail <= 8 / S);
    let tw = &w[full * 8 * qb..nb * qb];
    let mask = tail_mask(tail);
    let mut grp = [0u8; 256];
    for v in 0..qb / 4 {
        let x = ld_lanes(tw, 4 * tail * v, tail, mask);
        let rep = if S == 4 {
            _mm256_permute4x64_epi64::<0x00>(x)
        } else {
            _mm256_permute2x128_si256::<0x00>(x, x)
        };
        st256(&mut grp[32 * v..], rep);
    }
    let b = 8 * full;
    // The tail's scales (and Q4_1's mins) as f16 lanes 0..tail, repeated `S` times.
    let (ds, ms) = (&sc[2 * b..2 * nb], &sc[2 * nb..]);
    let mut d = [0u16; 8];
    let mut m = [0u16; 8];
    for k in 0..tail {
        for p in 0..S {
            d[8 / S * p + k] = u16::from_le_bytes([ds[2 * k], ds[2 * k + 1]]);
            if T == Q4_1 {
                m[8 / S * p + k] = u16::from_le_bytes([ms[2 * b + 2 * k], ms[2 * b + 2 * k + 1]]);
            }
        }
    }
    // SAFETY: both arrays are 16 bytes; unaligned loads have no alignment requirement.
    let (dv, mv) = unsafe {
        (
            _mm_loadu_si128(d.as_ptr().cast()),
            _mm_loadu_si128(m.as_ptr().cast()),
        )
    };
    let sc = (_mm256_cvtph_ps(dv), _mm256_cvtph_ps(mv));
    // `[_; C / S]` cannot be spelled with a generic `C`: one call per width.
    match (C, S) {
        (8, 4) => act_shared_tail::<T, C, 2, 4>(&grp, sc, a, b, nbp, acc),
        (4, 4) => act_shared_tail::<T, C, 1, 4>(&grp, sc, a, b, nbp, acc),
        (8, _) => act_shared_tail::<T, C, 4, 2>(&grp, sc, a, b, nbp, acc),
        (4, _) => act_shared_tail::<T, C, 2, 2>(&grp, sc, a, b, nbp, acc),
        _ => act_shared_tail::<T, C, 1, 2>(&grp, sc, a, b, nbp, acc),
    }
}

/// Adds the canonical terms of one weight row's tail group (blocks `b..`, at most `8 / S`
/// of them) for the `C = S * H` activation rows of `a`, `S` (2 or 4) at a time through
/// their shared groups (`ga.qp`, `ga.qq`): lanes `k * 8 / S..` of each product belong to
/// row `S * j + k`. `grp` holds the row's tail blocks in lanes `0..8 / S`, repeated for
/// each of the `S` rows, `(dw, mw)` its scales the same way. Each lane gets the
/// operations of [`tail_pair_terms`], and each row's lanes are moved to lanes `0..8 / S`
/// and added with +0.0 in the others, so the sums are unchanged.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn act_shared_tail<const T: u8, const C: usize, const H: usize, const S: usize>(
    grp: &[u8; 256],
    (dw, mw): (__m256, __m256),
    a: &ActRows<'_, C>,
    b: usize,
    nbp: usize,
    acc: &mut [[__m256; C]; 1],
) {
    // `b` starts the last group (`b + 8 == nbp`), whose first blocks are the tail.
    assert!((S == 2 || S == 4) && S * H == C && b.is_multiple_of(8) && b + 8 == nbp);
    let shared = if S == 2 { a.pair } else { a.quad };
    assert!(!shared.is_null(), "shared tail groups");
    // SAFETY: the shared groups of rows `S * j` are at `256 * S * j` from `shared`, 256
    // bytes each (`ActRows::new`).
    let y: [*const u8; H] = std::array::from_fn(|j| unsafe { shared.add(256 * S * j) });
    // SAFETY: `grp` has 256 bytes, each `y[j]` a 256-byte shared group.
    let is = unsafe { packed_isums_raw::<T, 1, H>([grp.as_ptr()], y) };
    // Lanes `0..8 / S` of group `b / 8` of rows `S * j..S * j + S` (8 entries a row, 32
    // bytes), side by side. SAFETY: that group lies in rows `< C` (`ActRows::new`).
    let gather = |v: *const u8, j: usize| unsafe {
        let p = v.add(4 * (a.gv * (b / 8) + 8 * S * j));
        if S == 2 {
            _mm256_loadu2_m128i(p.add(32).cast(), p.cast())
        } else {
            let lo =
                _mm_unpacklo_epi64(_mm_loadl_epi64(p.cast()), _mm_loadl_epi64(p.add(32).cast()));
            let hi = _mm_unpacklo_epi64(
                _mm_loadl_epi64(p.add(64).cast()),
                _mm_loadl_epi64(p.add(96).cast()),
            );
            _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi)
        }
    };
    for j in 0..H {
        let mut isum = is[0][j];
        if let Some(sh) = offset_shift(T, false) {
            let ys = gather(a.ys.cast(), j);
            isum = _mm256_sub_epi32(isum, _mm256_sll_epi32(ys, _mm_cvtsi32_si128(sh)));
        }
        let da = _mm256_castsi256_ps(gather(a.d.cast(), j));
        let mut term = _mm256_mul_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(isum));
        if T == Q4_1 {
            let sa = _mm256_castsi256_ps(gather(a.s.cast(), j));
            term = _mm256_add_ps(term, _mm256_mul_ps(mw, sa));
        }
        if S == 2 {
            let lo = _mm256_blend_ps::<0xF0>(term, _mm256_setzero_ps());
            acc[0][2 * j] = _mm256_add_ps(acc[0][2 * j], lo);
            let hi = _mm256_permute2f128_ps::<0x81>(term, term);
            acc[0][2 * j + 1] = _mm256_add_ps(acc[0][2 * j + 1], hi);
        } else {
            for k in 0..4 {
                let idx = _mm256_setr_epi32(2 * k as i32, 2 * k as i32 + 1, 0, 0, 0, 0, 0, 0);
                let t = _mm256_permutevar8x32_ps(term, idx);
                let t = _mm256_blend_ps::<0b11>(_mm256_setzero_ps(), t);
                acc[0][4 * j + k] = _mm256_add_ps(acc[0][4 * j + k], t);
            }
        }
    }
}

/// [`fold_ps`] of 8 vectors at once, with the same additions in the same order: result
/// lane `k` is the fold of `v[k]`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn fold8_ps(v: &[__m256; 8]) -> [f32; 8] {
    // [x0 + x4, x1 + x5, x2 + x6, x3 + x7 | the same of y] for each pair (x, y).
    let half = |x: __m256, y: __m256| {
        _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(x, y),
            _mm256_permute2f128_ps::<0x31>(x, y),
        )
    };
    let (s01, s23) = (half(v[0], v[1]), half(v[2], v[3]));
    let (s45, s67) = (half(v[4], v[5]), half(v[6], v[7]));
    // [s0 + s2, s1 + s3] of each: per 128-bit half, two vectors' pairs side by side.
    let quarter = |x: __m256, y: __m256| {
        _mm256_add_ps(
            _mm256_shuffle_ps::<0x44>(x, y),
            _mm256_shuffle_ps::<0xEE>(x, y),
        )
    };
    let (t0, t1) = (quarter(s01, s23), quarter(s45, s67));
    // (s0 + s2) + (s1 + s3): lanes hold vectors 0, 2, 4, 6 | 1, 3, 5, 7.
    let r = _mm256_add_ps(
        _mm256_shuffle_ps::<0x88>(t0, t1),
        _mm256_shuffle_ps::<0xDD>(t0, t1),
    );
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats; unaligned stores have no alignment requirement.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), r) };
    [
        lanes[0], lanes[4], lanes[1], lanes[5], lanes[2], lanes[6], lanes[3], lanes[7],
    ]
}

/// `R` packed weight rows times `C` activation rows `ts` (in `ga`), each result the
/// canonical sum of its row.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn packed_micro<const T: u8, const R: usize, const C: usize>(
    w: [&[u8]; R],
    ga: &GemmActs,
    a: &ActRows<'_, C>,
    nb: usize,
    nbp: usize,
) -> [[f32; C]; R] {
    let ts: [usize; C] = std::array::from_fn(|c| a.t0 + c);
    let qb = quant_bytes(T);
    let full = nb / 8;
    let tail = nb % 8;
    let mut acc = [[_mm256_setzero_ps(); C]; R];
    // Loops rather than `map` closures, which would not be inlined.
    let mut sc: [&[u8]; R] = [&[]; R];
    for r in 0..R {
        sc[r] = &w[r][nb * qb..];
    }
    let mut wq: [&[u8]; R] = [&[]; R];
    packed_full_groups::<T, R, C>(w, a, nb, &mut acc);
    if R.is_multiple_of(2) && tail_pairs(nb) {
        // Each pair of rows' tail groups as one: row `p`'s blocks in lanes 0-3, row
        // `p + 1`'s in lanes 4-7, against the activations' tail blocks in both halves.
        // The one-row tail copy (`ga.qd`, built only for one activation row).
        assert!(C == 1 && !a.one.is_null(), "one activation row");
        let y = [a.one; C];
        let b = 8 * full;
        let mask = tail_mask(tail);
        for p in (0..R).step_by(2) {
            let (t0, t1) = (
                &w[p][full * 8 * qb..nb * qb],
                &w[p + 1][full * 8 * qb..nb * qb],
            );
            let mut grp = [0u8; 256];
            for v in 0..qb / 4 {
                let off = 4 * tail * v;
                let lo = ld_lanes(t0, off, tail, mask);
                let hi = ld_lanes(t1, off, tail, mask);
                let pair = _mm256_permute2x128_si256::<0x20>(lo, hi);
                st256(&mut grp[32 * v..], pair);
            }
            // SAFETY: `grp` has 256 >= 8 * qb bytes, each activation group 256.
            let is = unsafe { packed_isums_raw::<T, 1, C>([grp.as_ptr()], y) };
            // The rows' scales, paired the same way.
            let mut d = [0u8; 16];
            let mut m = [0u8; 16];
            for k in 0..2 * tail {
                d[k] = sc[p][2 * b + k];
                d[8 + k] = sc[p + 1][2 * b + k];
                if T == Q4_1 {
                    m[k] = sc[p][2 * nb + 2 * b + k];
                    m[8 + k] = sc[p + 1][2 * nb + 2 * b + k];
                }
            }
            let dw = _mm256_cvtph_ps(ld128(&d));
            let mw = _mm256_cvtph_ps(ld128(&m));
            tail_pair_terms::<T, R, C>(p, &is[0], (dw, mw), false, ga, ts, b, nbp, &mut acc);
        }
    } else if R == 1 && C.is_multiple_of(4) && tail_quads(nb) {
        let acc1: &mut [[__m256; C]; 1] = (&mut acc[..1]).try_into().unwrap();
        shared_tail::<T, C, 4>(w[0], sc[0], a, nb, nbp, acc1);
    } else if R == 1 && C.is_multiple_of(2) && tail_pairs(nb) {
        let acc1: &mut [[__m256; C]; 1] = (&mut acc[..1]).try_into().unwrap();
        shared_tail::<T, C, 2>(w[0], sc[0], a, nb, nbp, acc1);
    } else if tail > 0 {
        for r in 0..R {
            wq[r] = &w[r][full * 8 * qb..nb * qb];
        }
        packed_tail_group::<T, R, C>(wq, sc, 2 * nb, tail, ga, ts, full, nbp, &mut acc);
    }
    let mut out = [[0f32; C]; R];
    if C == 8 {
        for r in 0..R {
            let v: &[__m256; 8] = (&acc[r][..]).try_into().unwrap();
            out[r].copy_from_slice(&fold8_ps(v));
        }
        return out;
    }
    // A loop rather than `map` closures, which would not be inlined (no target features).
    for r in 0..R {
        for c in 0..C {
            out[r][c] = fold_ps(acc[r][c]);
        }
    }
    out
}

/// [`prep_acts`] of all of `job.acts`, done once per quantisation and layout: the cached
/// copy when its key matches, else prepared now (in the previous copy's buffers) and
/// cached. Tasks arriving while it is prepared wait for it instead of preparing it again.
#[target_feature(enable = "avx2,fma,f16c")]
fn shared_acts<const T: u8>(
    job: &Job<'_>,
    nb: usize,
    nbp: usize,
    group_major: bool,
) -> std::sync::Arc<GemmActs> {
    // The layout depends on the kernel only through Q4_1's `s` and the row order.
    let key = 1 + u8::from(T == Q4_1) + 2 * u8::from(group_major);
    let mut slot = job
        .acts
        .prepared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((k, ga)) = slot.as_ref()
        && *k == key
    {
        return ga.clone();
    }
    let mut ga = slot.take().map_or_else(GemmActs::default, |(_, a)| {
        std::sync::Arc::try_unwrap(a).unwrap_or_default()
    });
    prep_acts::<T>(job, nb, nbp, group_major, &mut ga);
    let ga = std::sync::Arc::new(ga);
    *slot = Some((key, ga.clone()));
    ga
}

/// Packed kernel: see the section comment. With `vnni` (only where the CPU has AVX-512
/// VNNI), many activation rows go through the VNNI byte GEMM micro-kernel.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn packed32_inner<const T: u8>(job: &Job<'_>, out: &mut [f32], ga: &mut GemmActs, vnni: bool) {
    let rb = job.row_bytes;
    let nb = rb / block_bytes(T);
    let nbp = nb.next_multiple_of(8);
    let rows = job.w.len() / rb;
    let n = job.t1 - job.t0;
    // The GEMM path below (many rows of a nibble type) reads rows whole; the per-row
    // kernels read chunks of rows through `ActRows`, group-major.
    let gemm_path = T != Q8_0 && n >= UNPACK_MIN_ROWS;
    // A job over every activation row (the weight-row split of `matmul` gives one to each
    // task, and Q, K and V read the same rows) takes the rows prepared once for all.
    let shared = (n > 1 && job.t0 == 0 && job.t1 == job.acts.n())
        .then(|| shared_acts::<T>(job, nb, nbp, !gemm_path));
    let ga: &GemmActs = match &shared {
        Some(s) => s,
        None => {
            prep_acts::<T>(job, nb, nbp, !gemm_path, ga);
            ga
        }
    };
    let row = |r: usize| &job.w[r * rb..(r + 1) * rb];
    let mut r = 0;
    let one = (n == 1).then(|| ActRows::<1>::new::<T>(ga, 0, nbp));
    if let (Some(a1), true) = (&one, T == Q8_0) {
        // Q8_0 rows two at a time: with four (2.4 KB of weights per step, 612-byte rows),
        // out-of-cache rows ran at about half the speed of in-cache ones, prefetched or
        // not; two keep the same instructions per row and stream like the GGUF layout.
        while r + 2 <= rows {
            if let Some(next) = job.w.get((r + 2) * rb..(r + 4) * rb) {
                prefetch(next);
            }
            let s = packed_micro::<T, 2, 1>([row(r), row(r + 1)], ga, a1, nb, nbp);
            out[r] = s[0][0];
            out[r + 1] = s[1][0];
            r += 2;
        }
        while r < rows {
            out[r] = packed_micro::<T, 1, 1>([row(r)], ga, a1, nb, nbp)[0][0];
            r += 1;
        }
        return;
    }
    if let Some(a1) = &one {
        while r + 4 <= rows {
            // The next 4 rows, one stream: prefetch them while these are computed.
            if let Some(next) = job.w.get((r + 4) * rb..(r + 8) * rb) {
                prefetch(next);
            }
            let s = packed_micro::<T, 4, 1>(
                [row(r), row(r + 1), row(r + 2), row(r + 3)],
                ga,
                a1,
                nb,
                nbp,
            );
            for (k, s) in s.iter().enumerate() {
                out[r + k] = s[0];
            }
            r += 4;
        }
        while r < rows {
            out[r] = packed_micro::<T, 1, 1>([row(r)], ga, a1, nb, nbp)[0][0];
            r += 1;
        }
        return;
    }
    let stride = job.stride;
    let mut gw = GemmW::default();
    // Weight rows per micro-kernel call, as in `gemm32_avx2` / `gemm32_vnni`.
    let width = if vnni { 4 } else { 2 };
    if gemm_path {
        gw.q.resize(width * nbp * 32, 0);
        gw.d.resize(width * nbp, 0.0);
        gw.m.resize(if T == Q4_1 { width * nbp } else { 0 }, 0.0);
    }
    let mut t0 = 0;
    while t0 < n {
        let t1 = (t0 + job.tile).min(n);
        let chunks = (!gemm_path).then(|| Chunks::new::<T>(ga, (t0, t1), nbp));
        r = 0;
        while r < rows {
            if gemm_path {
                // Many activation rows: split each weight row's nibbles once per tile
                // (no transpose: the packed layout is already grouped) and run the byte
                // GEMM micro-kernel, which then reads plain bytes.
                let rr = if r + width <= rows {
                    width
                } else if r + 2 <= rows {
                    2
                } else {
                    1
                };
                for k in 0..rr {
                    packed_to_gemm::<T>(row(r + k), nb, nbp, &mut gw, k);
                }
                let tile = (t0, t1);
                if vnni {
                    // SAFETY: `vnni` is set only by the kernels `packed_kernel` hands out
                    // after `vnni_available()` (AVX-512 F, VL and VNNI present).
                    unsafe {
                        match rr {
                            4 => rows_vnni::<T, 4>(&gw, ga, tile, r, nb, nbp, stride, out),
                            2 => rows_vnni::<T, 2>(&gw, ga, tile, r, nb, nbp, stride, out),
                            _ => rows_vnni::<T, 1>(&gw, ga, tile, r, nb, nbp, stride, out),
                        }
                    }
                } else if rr == 2 {
                    rows_avx2::<T, 2>(&gw, ga, tile, r, nb, nbp, stride, out);
                } else {
                    rows_avx2::<T, 1>(&gw, ga, tile, r, nb, nbp, stride, out);
                }
                r += rr;
            } else if let Some(chunks) = &chunks {
                if vnni {
                    // SAFETY: as above.
                    unsafe { vnni_chunk_rows::<T>(job.w, rb, chunks, nb, stride, out) };
                } else {
                    chunks.rows::<T>(job.w, rb, ga, nb, nbp, stride, out);
                }
                r = rows;
            }
        }
        t0 = t1;
    }
}

/// From this many activation rows on, the packed kernel unpacks weight rows per tile.
const UNPACK_MIN_ROWS: usize = 16;

/// Packed row `w` (Q4_0, Q4_1 or Q5_0) into slot `slot` of `gw`, as [`unpack_w`] lays it.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn packed_to_gemm<const T: u8>(w: &[u8], nb: usize, nbp: usize, gw: &mut GemmW, slot: usize) {
    let qb = quant_bytes(T);
    let full = nb / 8;
    let low = _mm256_set1_epi8(0x0F);
    let q = &mut gw.q[slot * nbp * 32..(slot + 1) * nbp * 32];
    for g in 0..nbp / 8 {
        let lanes = if g < full { 8 } else { nb % 8 };
        let src = &w[g * 8 * qb..(g * 8 + lanes) * qb];
        let mask = tail_mask(lanes);
        for p in 0..4 {
            let pk = ld_lanes(src, 4 * lanes * p, lanes, mask);
            let mut lo = _mm256_and_si256(pk, low);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(pk), low);
            if T == Q5_0 {
                let h = ld_lanes(src, 16 * lanes, lanes, mask);
                lo = _mm256_or_si256(lo, fifth_bits(h, p));
                hi = _mm256_or_si256(hi, fifth_bits(h, p + 4));
            }
            st256(&mut q[256 * g + 32 * p..], lo);
            st256(&mut q[256 * g + 32 * (p + 4)..], hi);
        }
    }
    let sc = &w[nb * qb..];
    for i in 0..nbp {
        gw.d[slot * nbp + i] = if i < nb { f16_1(sc, 2 * i) } else { 0.0 };
        if T == Q4_1 {
            gw.m[slot * nbp + i] = if i < nb {
                f16_1(sc, 2 * nb + 2 * i)
            } else {
                0.0
            };
        }
    }
}

/// Activation rows `t0..t1` of a tile in chunks of 8, then 4, 2 and 1, each chunk's
/// pointers checked once for every weight row of the job.
struct Chunks<'a> {
    /// The tile's rows, `t0..t1`.
    t: (usize, usize),
    c8: Vec<ActRows<'a, 8>>,
    c4: Option<ActRows<'a, 4>>,
    c2: Option<ActRows<'a, 2>>,
    c1: Option<ActRows<'a, 1>>,
}

impl<'a> Chunks<'a> {
    fn new<const T: u8>(ga: &'a GemmActs, (t0, t1): (usize, usize), nbp: usize) -> Self {
        let mut t = t0;
        let mut c8 = Vec::with_capacity((t1 - t0) / 8);
        while t + 8 <= t1 {
            c8.push(ActRows::new::<T>(ga, t, nbp));
            t += 8;
        }
        let mut take = |c: usize| {
            let ok = t + c <= t1;
            let at = t;
            if ok {
                t += c;
            }
            ok.then_some(at)
        };
        let c4 = take(4).map(|t| ActRows::new::<T>(ga, t, nbp));
        let c2 = take(2).map(|t| ActRows::new::<T>(ga, t, nbp));
        let c1 = take(1).map(|t| ActRows::new::<T>(ga, t, nbp));
        Self {
            t: (t0, t1),
            c8,
            c4,
            c2,
            c1,
        }
    }

    /// Every packed weight row of `w` (`rb` bytes each) against every chunk: output
    /// `(t, r)` at `out[t * stride + r]`. The weights stream by once per tile, so each row
    /// fetches the row after next while it is computed.
    ///
    /// # Panics
    ///
    /// If the tile's last output is not in `out`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    fn rows<const T: u8>(
        &self,
        w: &[u8],
        rb: usize,
        ga: &GemmActs,
        nb: usize,
        nbp: usize,
        stride: usize,
        out: &mut [f32],
    ) {
        let rows = w.len() / rb;
        let (t0, t1) = self.t;
        assert!(rows == 0 || t1 == t0 || (t1 - 1) * stride + rows <= out.len());
        for r in 0..rows {
            if let Some(next) = w.get((r + 2) * rb..(r + 3) * rb) {
                prefetch(next);
            }
            let w = &w[r * rb..(r + 1) * rb];
            let mut put = |t: usize, s: &[f32]| {
                for (k, &s) in s.iter().enumerate() {
                    let i = (t + k) * stride + r;
                    debug_assert!(i < out.len());
                    // SAFETY: `t + k < t1` and `r < rows`, so `i` is at most the tile's last
                    // output, which lies in `out` (asserted above).
                    unsafe { *out.get_unchecked_mut(i) = s };
                }
            };
            for a in &self.c8 {
                put(a.t0, &packed_micro::<T, 1, 8>([w], ga, a, nb, nbp)[0]);
            }
            if let Some(a) = &self.c4 {
                put(a.t0, &packed_micro::<T, 1, 4>([w], ga, a, nb, nbp)[0]);
            }
            if let Some(a) = &self.c2 {
                put(a.t0, &packed_micro::<T, 1, 2>([w], ga, a, nb, nbp)[0]);
            }
            if let Some(a) = &self.c1 {
                put(a.t0, &packed_micro::<T, 1, 1>([w], ga, a, nb, nbp)[0]);
            }
        }
    }
}

/// Safe entry points for the packed kernels.
macro_rules! entry_packed {
    ($($name:ident => $t:ident, $vnni:literal),* $(,)?) => {$(
        fn $name(job: &Job<'_>, out: &mut [f32]) {
            PACKED_ACTS.with_borrow_mut(|ga| {
                // SAFETY: these entry points are only handed out by `packed_kernel`, which
                // checks `available()` (AVX2, FMA and F16C present) first.
                unsafe { packed32_inner::<$t>(job, out, ga, $vnni) }
            });
        }
    )*};
}

entry_packed! {
    p_q4_0 => Q4_0, false,
    p_q4_1 => Q4_1, false,
    p_q5_0 => Q5_0, false,
    p_q8_0 => Q8_0, false,
}

/// [`packed32_inner`] with `vnni`, compiled with the AVX-512 features as well, so that
/// the whole kernel may use them (the extra vector registers above all).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
fn packed32_vnni<const T: u8>(job: &Job<'_>, out: &mut [f32], ga: &mut GemmActs) {
    packed32_inner::<T>(job, out, ga, true);
}

/// Safe entry points for the VNNI packed kernels.
macro_rules! entry_packed_vnni {
    ($($name:ident => $t:ident),* $(,)?) => {$(
        fn $name(job: &Job<'_>, out: &mut [f32]) {
            PACKED_ACTS.with_borrow_mut(|ga| {
                // SAFETY: handed out by `packed_kernel` only after `vnni_available()`.
                unsafe { packed32_vnni::<$t>(job, out, ga) }
            });
        }
    )*};
}

entry_packed_vnni! {
    pv_q4_0 => Q4_0,
    pv_q4_1 => Q4_1,
    pv_q5_0 => Q5_0,
}

fn pv_q8_0(job: &Job<'_>, out: &mut [f32]) {
    PACKED_ACTS.with_borrow_mut(|ga| {
        // SAFETY: handed out by `packed_kernel` only after `vnni_available()`.
        unsafe { packed_q8_vnni(job, out, ga) }
    });
}

/// The kernel for packed weights of a type (with `vnni`, the AVX-512 VNNI one), or `None`
/// when this CPU lacks the features.
pub(crate) fn packed_kernel(dtype: GgmlType, vnni: bool) -> Option<Kernel> {
    if !available() || (vnni && !vnni_available()) {
        return None;
    }
    let pick = |k: Kernel, v: Kernel| if vnni { v } else { k };
    Some(match dtype {
        GgmlType::Q4_0 => pick(p_q4_0, pv_q4_0),
        GgmlType::Q4_1 => pick(p_q4_1, pv_q4_1),
        GgmlType::Q5_0 => pick(p_q5_0, pv_q5_0),
        GgmlType::Q8_0 => pick(p_q8_0, pv_q8_0),
        other => panic!("{other} has no packed layout"),
    })
}

/// Packed Q8_0 with AVX-512 VNNI. `dpbusd` multiplies unsigned by signed bytes, so each
/// weight byte is offset by 128 (`w ^ 0x80`) and `128 * sum(y)` of each block is taken off
/// the integer sum again: exact, so the terms and lanes are those of the AVX2 kernel.
/// Several activation rows go through one weight row at a time in chunks of 8, 4, 2 and 1
/// rows ([`vnni_rows`]); one activation row takes the AVX2 kernel.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
fn packed_q8_vnni(job: &Job<'_>, out: &mut [f32], ga: &mut GemmActs) {
    let rb = job.row_bytes;
    let nb = rb / block_bytes(Q8_0);
    let nbp = nb.next_multiple_of(8);
    let n = job.t1 - job.t0;
    if n == 1 {
        // One activation row streams the weights by once, and the AVX2 kernel keeps up
        // with memory there: with `dpbusd`, 2 or 4 rows at a time measured slower.
        return packed32_inner::<Q8_0>(job, out, ga, false);
    }
    let shared =
        (job.t0 == 0 && job.t1 == job.acts.n()).then(|| shared_acts::<Q8_0>(job, nb, nbp, true));
    let ga: &GemmActs = match &shared {
        Some(s) => s,
        None => {
            prep_acts::<Q8_0>(job, nb, nbp, true, ga);
            ga
        }
    };
    let mut t0 = 0;
    while t0 < n {
        let t1 = (t0 + job.tile).min(n);
        let chunks = Chunks::new::<Q8_0>(ga, (t0, t1), nbp);
        vnni_rows::<Q8_0>(job.w, job.row_bytes, &chunks, nb, job.stride, out);
        t0 = t1;
    }
}

/// Every packed weight row of `w` (`rb` bytes each, type `T`) against every chunk of
/// activation rows with `dpbusd`, two weight rows at a time ([`vnni_micro`]): output `(t,
/// r)` at `out[t * stride + r]`. The weights stream by once per tile, so each pair of
/// rows fetches the rows [`VNNI_AHEAD`] on into L2 while it is computed.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
#[inline]
fn vnni_rows<const T: u8>(
    w: &[u8],
    rb: usize,
    chunks: &Chunks<'_>,
    nb: usize,
    stride: usize,
    out: &mut [f32],
) {
    let rows = w.len() / rb;
    let row = |r: usize| &w[r * rb..(r + 1) * rb];
    let mut put = |r: usize, t: usize, s: &[f32]| {
        for (k, &s) in s.iter().enumerate() {
            out[(t + k) * stride + r] = s;
        }
    };
    let mut r = 0;
    while r + 2 <= rows {
        if let Some(next) = w.get((r + VNNI_AHEAD) * rb..(r + VNNI_AHEAD + 2) * rb) {
            prefetch_l2(next);
        }
        let w = [row(r), row(r + 1)];
        for a in &chunks.c8 {
            let s = vnni_micro::<T, 2, 8>(w, a, nb);
            put(r, a.t0, &s[0]);
            put(r + 1, a.t0, &s[1]);
        }
        if let Some(a) = &chunks.c4 {
            let s = vnni_micro::<T, 2, 4>(w, a, nb);
            put(r, a.t0, &s[0]);
            put(r + 1, a.t0, &s[1]);
        }
        if let Some(a) = &chunks.c2 {
            let s = vnni_micro::<T, 2, 2>(w, a, nb);
            put(r, a.t0, &s[0]);
            put(r + 1, a.t0, &s[1]);
        }
        if let Some(a) = &chunks.c1 {
            let s = vnni_micro::<T, 2, 1>(w, a, nb);
            put(r, a.t0, &s[0]);
            put(r + 1, a.t0, &s[1]);
        }
        r += 2;
    }
    if r < rows {
        let w = [row(r)];
        for a in &chunks.c8 {
            put(r, a.t0, &vnni_micro::<T, 1, 8>(w, a, nb)[0]);
        }
        if let Some(a) = &chunks.c4 {
            put(r, a.t0, &vnni_micro::<T, 1, 4>(w, a, nb)[0]);
        }
        if let Some(a) = &chunks.c2 {
            put(r, a.t0, &vnni_micro::<T, 1, 2>(w, a, nb)[0]);
        }
        if let Some(a) = &chunks.c1 {
            put(r, a.t0, &vnni_micro::<T, 1, 1>(w, a, nb)[0]);
        }
    }
}

/// [`vnni_rows`] as a call from code compiled without the AVX-512 features.
///
/// # Safety
///
/// The CPU has AVX-512 F, VL and VNNI (`vnni_available()`).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
unsafe fn vnni_chunk_rows<const T: u8>(
    w: &[u8],
    rb: usize,
    chunks: &Chunks<'_>,
    nb: usize,
    stride: usize,
    out: &mut [f32],
) {
    vnni_rows::<T>(w, rb, chunks, nb, stride, out);
}

/// How many weight rows ahead [`vnni_rows`] fetches.
const VNNI_AHEAD: usize = 8;

/// The f16 values of `h` (at most 8) as f32 lanes, zero after them. Each length gets a
/// copy of fixed size: one of run-time length compiled to a `memcpy` call, around which
/// every live vector register was spilled (30% of the batched Q8_0 kernel's samples).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn f16_lanes(h: &[u8]) -> __m256 {
    let mut d = [0u8; 16];
    match h.len() {
        2 => d[..2].copy_from_slice(h),
        4 => d[..4].copy_from_slice(h),
        6 => d[..6].copy_from_slice(h),
        8 => d[..8].copy_from_slice(h),
        10 => d[..10].copy_from_slice(h),
        12 => d[..12].copy_from_slice(h),
        14 => d[..14].copy_from_slice(h),
        16 => d.copy_from_slice(h),
        n => panic!("{n} bytes are not 1-8 f16 values"),
    }
    _mm256_cvtph_ps(ld128(&d))
}

/// Stored vector `p` of a group (`quant_bytes(T) / 4` of them) holds weight vector `p`
/// of Q8_0; of the nibble formats, vectors `p` (low nibbles) and `p + 4` (high).
const fn stored(t: u8, v: usize) -> usize {
    if t == Q8_0 { v } else { v % 4 }
}

/// Weight vector `v` of a group for `dpbusd`, which takes unsigned bytes, from its stored
/// vector `x` (see [`stored`]) and Q5_0's fifth bits `h` (stored vector 4): Q8_0's bytes
/// offset by 128 (`w ^ 0x80`), the nibble formats' codes.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
#[inline]
fn vnni_wvec<const T: u8>(x: __m256i, h: __m256i, v: usize) -> __m256i {
    if T == Q8_0 {
        return _mm256_xor_si256(x, _mm256_set1_epi8(0x80u8 as i8));
    }
    let x = if v < 4 { x } else { _mm256_srli_epi16::<4>(x) };
    let q = _mm256_and_si256(x, _mm256_set1_epi8(0x0F));
    if T == Q5_0 {
        _mm256_or_si256(q, fifth_bits(h, v))
    } else {
        q
    }
}

/// `R` packed weight rows `w` (`nb` blocks of type `T` each) times the `C` activation
/// rows of `a` with `dpbusd`, each result the canonical sum of its row: the integer sums
/// are those of the AVX2 kernels (Q8_0's offset is taken off again with `ys`, see
/// [`packed_q8_vnni`]), and so are the terms and lanes. A tail group of at most 4 blocks
/// goes through the activation rows' pair groups (`a.pair`), two rows per vector; a
/// longer one, or one row, is loaded with its missing blocks as zeros (their scales are
/// zero, so their terms are +0.0).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
#[inline]
fn vnni_micro<const T: u8, const R: usize, const C: usize>(
    w: [&[u8]; R],
    a: &ActRows<'_, C>,
    nb: usize,
) -> [[f32; C]; R] {
    let qb = quant_bytes(T);
    let (full, tail) = (nb / 8, nb % 8);
    for w in w {
        assert!(w.len() == nb * block_bytes(T), "a packed row");
    }
    let mut lanes = [[_mm256_setzero_ps(); C]; R];
    let zero = _mm256_setzero_si256();
    for g in 0..full {
        let b = 8 * g;
        let mut wg: [&[u8]; R] = [&[]; R];
        let mut h = [zero; R];
        for r in 0..R {
            wg[r] = &w[r][qb * b..qb * (b + 8)];
            if T == Q5_0 {
                h[r] = ld256(&wg[r][128..]);
            }
        }
        let mut acc = [[zero; C]; R];
        for v in 0..8 {
            let mut wv = [zero; R];
            for r in 0..R {
                wv[r] = vnni_wvec::<T>(ld256(&wg[r][32 * stored(T, v)..]), h[r], v);
            }
            for c in 0..C {
                // SAFETY: activation group `g < nbp / 8` of the rows of `a` (256 bytes
                // each) lies in the buffers (`ActRows::new`).
                let y = unsafe { _mm256_loadu_si256(a.y.add(a.gq * g + 256 * c + 32 * v).cast()) };
                for (acc, &wv) in acc.iter_mut().zip(&wv) {
                    acc[c] = _mm256_dpbusd_epi32(acc[c], wv, y);
                }
            }
        }
        for r in 0..R {
            let sc = &w[r][qb * nb..];
            let dw = _mm256_cvtph_ps(ld128(&sc[2 * b..]));
            let mw = if T == Q4_1 {
                _mm256_cvtph_ps(ld128(&sc[2 * nb + 2 * b..]))
            } else {
                dw
            };
            vnni_terms::<T, C>(&acc[r], (dw, mw), a, g, &mut lanes[r]);
        }
    }
    if tail > 0 {
        let b = 8 * full;
        let mut tw: [&[u8]; R] = [&[]; R];
        let mut scales = [(_mm256_setzero_ps(), _mm256_setzero_ps()); R];
        for r in 0..R {
            tw[r] = &w[r][qb * b..qb * nb];
            // The tail's scales (and Q4_1's mins), zero past its end.
            let sc = &w[r][qb * nb..];
            let d = f16_lanes(&sc[2 * b..2 * nb]);
            let m = if T == Q4_1 {
                f16_lanes(&sc[2 * nb + 2 * b..4 * nb])
            } else {
                _mm256_setzero_ps()
            };
            scales[r] = (d, m);
        }
        if C.is_multiple_of(2) && tail <= 4 && !a.pair.is_null() {
            vnni_pair_tail::<T, R, C>(tw, tail, scales, a, full, &mut lanes);
        } else {
            let mask = tail_mask(tail);
            // Stored vector `p` of a tail: `tail` lanes of 4 bytes at `4 * tail * p`.
            let ld = |r: usize, p: usize| ld_lanes(tw[r], 4 * tail * p, tail, mask);
            let mut h = [zero; R];
            for (r, h) in h.iter_mut().enumerate() {
                if T == Q5_0 {
                    *h = ld(r, 4);
                }
            }
            let mut acc = [[zero; C]; R];
            for v in 0..8 {
                let mut wv = [zero; R];
                for r in 0..R {
                    wv[r] = vnni_wvec::<T>(ld(r, stored(T, v)), h[r], v);
                }
                for c in 0..C {
                    // SAFETY: as above, for the last group `full < nbp / 8`.
                    let y = unsafe {
                        _mm256_loadu_si256(a.y.add(a.gq * full + 256 * c + 32 * v).cast())
                    };
                    for (acc, &wv) in acc.iter_mut().zip(&wv) {
                        acc[c] = _mm256_dpbusd_epi32(acc[c], wv, y);
                    }
                }
            }
            for r in 0..R {
                vnni_terms::<T, C>(&acc[r], scales[r], a, full, &mut lanes[r]);
            }
        }
    }
    let mut out = [[0f32; C]; R];
    for r in 0..R {
        if C == 8 {
            out[r].copy_from_slice(&fold8_ps(lanes[r][..].try_into().expect("8 rows")));
        } else {
            for c in 0..C {
                out[r][c] = fold_ps(lanes[r][c]);
            }
        }
    }
    out
}

/// The canonical term of one group's lanes: `(dw * da) * (isum - offset * ys)`, plus
/// `mw * sa` for Q4_1 (as `term_d` / `term_dm`).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
#[inline]
fn vnni_term<const T: u8>(
    isum: __m256i,
    (dw, mw): (__m256, __m256),
    (da, ys, sa): (__m256, __m256i, __m256),
) -> __m256 {
    let mut isum = isum;
    if let Some(sh) = offset_shift(T, true) {
        isum = _mm256_sub_epi32(isum, _mm256_sll_epi32(ys, _mm_cvtsi32_si128(sh)));
    }
    let term = _mm256_mul_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(isum));
    if T == Q4_1 {
        _mm256_add_ps(term, _mm256_mul_ps(mw, sa))
    } else {
        term
    }
}

/// Adds group `g`'s canonical terms ([`vnni_term`]) for the `C` rows of `a` (`acc`: the
/// integer sums, `scales`: the weight scales and Q4_1's mins) to `lanes`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
#[inline]
fn vnni_terms<const T: u8, const C: usize>(
    acc: &[__m256i; C],
    scales: (__m256, __m256),
    a: &ActRows<'_, C>,
    g: usize,
    lanes: &mut [__m256; C],
) {
    for c in 0..C {
        let o = a.gv * g + 8 * c;
        // SAFETY: group `g`'s 8 scales, sums and (Q4_1) `s` of row `c` of `a` lie in the
        // buffers (`ActRows::new`).
        let act = unsafe {
            (
                _mm256_loadu_ps(a.d.add(o)),
                _mm256_loadu_si256(a.ys.add(o).cast()),
                if T == Q4_1 {
                    _mm256_loadu_ps(a.s.add(o))
                } else {
                    _mm256_setzero_ps()
                },
            )
        };
        lanes[c] = _mm256_add_ps(lanes[c], vnni_term::<T>(acc[c], scales, act));
    }
}

/// The tail group (group `g`, `tail <= 4` blocks) of `R` weight rows (`tw`: their tail
/// bytes, `scales`: their scales and Q4_1's mins with zeros after them) for the `C`
/// activation rows of `a`, two rows per vector through their pair groups: lanes 0-3
/// belong to row `2j`, lanes 4-7 to row `2j + 1`. Each row's four lanes are added to its
/// lanes 0-3 with +0.0 in lanes 4-7, so the sums are those of a full-width tail group.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
#[inline]
fn vnni_pair_tail<const T: u8, const R: usize, const C: usize>(
    tw: [&[u8]; R],
    tail: usize,
    scales: [(__m256, __m256); R],
    a: &ActRows<'_, C>,
    g: usize,
    lanes: &mut [[__m256; C]; R],
) {
    let qb = quant_bytes(T);
    assert!(C.is_multiple_of(2) && (1..=4).contains(&tail));
    for tw in tw {
        assert!(tw.len() == qb * tail);
    }
    assert!(!a.pair.is_null(), "pair groups");
    let kmask = (1u8 << tail) - 1;
    // Stored vector `p` of a tail (`tail` lanes of 4 bytes at `4 * tail * p`) in both
    // halves. SAFETY: those bytes lie within `tw[r]`; masked-off lanes are not read (and
    // cannot fault).
    let ld = |r: usize, p: usize| {
        let x = unsafe { _mm_maskz_loadu_epi32(kmask, tw[r].as_ptr().add(4 * tail * p).cast()) };
        _mm256_broadcastsi128_si256(x)
    };
    let zero = _mm256_setzero_si256();
    let mut h = [zero; R];
    for (r, h) in h.iter_mut().enumerate() {
        if T == Q5_0 {
            *h = ld(r, 4);
        }
    }
    let mut acc = [[zero; C]; R];
    for v in 0..8 {
        let mut wv = [zero; R];
        for r in 0..R {
            wv[r] = vnni_wvec::<T>(ld(r, stored(T, v)), h[r], v);
        }
        for j in 0..C / 2 {
            // SAFETY: the pair group of rows `2j`, `2j + 1` (256 bytes) is `512 * j` bytes
            // from `a.pair` (`ActRows::new`).
            let y = unsafe { _mm256_loadu_si256(a.pair.add(512 * j + 32 * v).cast()) };
            for (acc, &wv) in acc.iter_mut().zip(&wv) {
                acc[j] = _mm256_dpbusd_epi32(acc[j], wv, y);
            }
        }
    }
    for j in 0..C / 2 {
        // Lanes 0-3 of group `g` of rows `2j` and `2j + 1` (8 entries a row), side by
        // side. SAFETY: that group lies in rows `< C` (`ActRows::new`).
        let act = unsafe {
            let o = a.gv * g + 16 * j;
            (
                _mm256_loadu2_m128(a.d.add(o + 8), a.d.add(o)),
                _mm256_loadu2_m128i(a.ys.add(o + 8).cast(), a.ys.add(o).cast()),
                if T == Q4_1 {
                    _mm256_loadu2_m128(a.s.add(o + 8), a.s.add(o))
                } else {
                    _mm256_setzero_ps()
                },
            )
        };
        for r in 0..R {
            // The scales of lanes 0-3 in both halves.
            let (dw, mw) = scales[r];
            let sc = (
                _mm256_permute2f128_ps::<0x00>(dw, dw),
                _mm256_permute2f128_ps::<0x00>(mw, mw),
            );
            let term = vnni_term::<T>(acc[r][j], sc, act);
            let lo = _mm256_blend_ps::<0xF0>(term, _mm256_setzero_ps());
            lanes[r][2 * j] = _mm256_add_ps(lanes[r][2 * j], lo);
            let hi = _mm256_permute2f128_ps::<0x81>(term, term);
            lanes[r][2 * j + 1] = _mm256_add_ps(lanes[r][2 * j + 1], hi);
        }
    }
}
