//! Portable kernels and the canonical per-block float terms shared by every path.
//!
//! The dot products here are plain Rust that LLVM vectorises for the compile target; they
//! are the reference for the x86 module, whose AVX2 kernels must (and are tested to) give
//! bit-identical results. The kernel drivers are macros so that each path instantiates
//! them inside its own `#[target_feature]` functions.

use half::f16;

use super::blocks::{f16_to_f32, rd_f16, scale_min_k4};
use super::{ActRow, GgmlType, Kernel};

// ---- Canonical per-block terms: every path must compute exactly these expressions. ----

/// Q4_0/Q5_0/Q8_0 × Q8_0 and Q6_K × Q8_K: `(dw * da) * isum`.
#[inline(always)]
pub(crate) fn term_d(dw: f32, da: f32, isum: i32) -> f32 {
    (dw * da) * isum as f32
}

/// Q4_1 × Q8_1: `(dw * da) * isum + mw * sa`.
#[inline(always)]
pub(crate) fn term_dm(dw: f32, da: f32, isum: i32, mw: f32, sa: f32) -> f32 {
    (dw * da) * isum as f32 + mw * sa
}

/// Q4_K × Q8_K: `(dw * da) * isum - (dminw * da) * imin`.
#[inline(always)]
pub(crate) fn term_k4(dw: f32, dminw: f32, da: f32, isum: i32, imin: i32) -> f32 {
    (dw * da) * isum as f32 - (dminw * da) * imin as f32
}

/// Lanes of the canonical sum of a row's block terms.
pub(crate) const LANES: usize = 8;

/// The canonical combination of the lanes of a row's block terms. Term `i` (block `i`,
/// or super-block `i` for K-quants) is added to lane `i % 8`, each lane in block order,
/// then the lanes are folded as an 8-wide SIMD register folds:
/// `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`. Every path computes exactly this,
/// so SIMD kernels keep 8 running sums in one register instead of adding terms one by one.
#[inline(always)]
pub(crate) fn fold_lanes(l: &[f32; LANES]) -> f32 {
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// [`super::dot_f16`] in plain Rust.
#[inline(always)]
pub(crate) fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut lanes = [0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..LANES {
            lanes[l] += x[l] * f16_to_f32(y[l].to_bits());
        }
    }
    let mut sum = fold_lanes(&lanes);
    for (x, y) in ar.iter().zip(br) {
        sum += x * f16_to_f32(y.to_bits());
    }
    sum
}

/// `o[d] = sum over j of p[j] * v[j * stride + d]`, for `d < o.len()`: each element
/// starts at 0 and adds its terms in `j` order, each product rounded (no FMA). Attention's
/// probability-weighted sum of value rows (half-precision values, converted exactly).
#[inline(always)]
pub(crate) fn weighted_rows(p: &[f32], v: &[f16], stride: usize, o: &mut [f32]) {
    o.fill(0.0);
    for (j, &pj) in p.iter().enumerate() {
        let row = &v[j * stride..j * stride + o.len()];
        for (acc, &b) in o.iter_mut().zip(row) {
            *acc += pj * f16_to_f32(b.to_bits());
        }
    }
}

/// Coefficients of the polynomial for `e^r` on `|r| <= ln 2 / 2` (Cephes `expf`):
/// `e^r ~ 1 + r + r^2 * P(r)` (its last coefficient, 5.0000001201e-1, is 0.5 in `f32`).
pub(crate) const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];
/// `log2(e)`, and `ln 2` split so that `n * EXP_LN2_HI` is exact for `|n| <= 127`.
pub(crate) const EXP_LOG2E: f32 = std::f32::consts::LOG2_E;
pub(crate) const EXP_LN2_HI: f32 = 0.693_359_4;
pub(crate) const EXP_LN2_LO: f32 = -2.121_944_4e-4;
/// Inputs below this give 0: `e^-87` is under `2^-125`, and attention rounds
/// probabilities to half precision, whose smallest value is `2^-24`.
pub(crate) const EXP_MIN: f32 = -87.0;

/// Above this, `e^x` overflows `f32` ([`exp_any`] gives infinity).
pub(crate) const EXP_MAX: f32 = 88.0;

/// `e^xc` for `EXP_MIN <= xc <= EXP_MAX`, within about one unit in the last place: Cephes'
/// range reduction and polynomial, plain multiplications and additions in a fixed order
/// (no fused multiply-add), so the 8-lane AVX2 version gives the same bits.
#[inline(always)]
fn exp_in_range(xc: f32) -> f32 {
    let n = (xc * EXP_LOG2E).round_ties_even();
    let r = (xc - n * EXP_LN2_HI) - n * EXP_LN2_LO;
    let z = r * r;
    let mut p = EXP_P[0];
    for &c in &EXP_P[1..] {
        p = p * r + c;
    }
    let y = (p * z + r) + 1.0;
    // `n` is in -126..=127 here, a normal power of two.
    let e = f32::from_bits(((n as i32 + 127) as u32) << 23);
    y * e
}

/// `e^x` for `x <= 0` (a score minus the maximum score), within about one unit in the
/// last place; 0 below [`EXP_MIN`] or for NaN.
#[inline(always)]
pub(crate) fn exp_nonpos(x: f32) -> f32 {
    let e = exp_in_range(x.max(EXP_MIN));
    if x >= EXP_MIN { e } else { 0.0 }
}

/// `e^x` for any `x`, within about one unit in the last place: 0 below [`EXP_MIN`] (and
/// for NaN), infinity above [`EXP_MAX`]. Flurry's own, so SiLU does not depend on the
/// system's libm.
#[inline(always)]
#[allow(clippy::manual_clamp)] // `clamp` keeps NaN; `max` maps it to EXP_MIN, as `vmaxps`.
pub(crate) fn exp_any(x: f32) -> f32 {
    let e = exp_in_range(x.max(EXP_MIN).min(EXP_MAX));
    if x > EXP_MAX {
        f32::INFINITY
    } else if x >= EXP_MIN {
        e
    } else {
        0.0
    }
}

/// SwiGLU in place: `gate[i] = gate[i] / (1 + e^-gate[i]) * up[i]` ([`exp_any`]), each
/// operation rounded in this order.
#[inline(always)]
pub(crate) fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + exp_any(-*g)) * u;
    }
}

/// [`super::exp_shifted`] in plain Rust.
#[inline(always)]
pub(crate) fn exp_shifted(xs: &mut [f32], max: f32) -> f64 {
    let mut sum = 0.0f64;
    for x in xs {
        *x = exp_nonpos(*x - max);
        sum += f64::from(*x);
    }
    sum
}

// ---- Exact integer block dots. ----

#[inline(always)]
fn isum_q4_0(qs: &[u8], y: &[i8]) -> i32 {
    let (qs, y) = (&qs[..16], &y[..32]);
    let mut s = 0i32;
    for j in 0..16 {
        s += (i32::from(qs[j] & 0xF) - 8) * i32::from(y[j]);
        s += (i32::from(qs[j] >> 4) - 8) * i32::from(y[j + 16]);
    }
    s
}

#[inline(always)]
fn isum_q4_1(qs: &[u8], y: &[i8]) -> i32 {
    let (qs, y) = (&qs[..16], &y[..32]);
    let mut s = 0i32;
    for j in 0..16 {
        s += i32::from(qs[j] & 0xF) * i32::from(y[j]);
        s += i32::from(qs[j] >> 4) * i32::from(y[j + 16]);
    }
    s
}

#[inline(always)]
fn isum_q5_0(qh: u32, qs: &[u8], y: &[i8]) -> i32 {
    let (qs, y) = (&qs[..16], &y[..32]);
    let mut s = 0i32;
    for j in 0..16 {
        let h0 = ((qh >> j) & 1) << 4;
        let h1 = ((qh >> (j + 16)) & 1) << 4;
        s += ((u32::from(qs[j] & 0xF) | h0) as i32 - 16) * i32::from(y[j]);
        s += ((u32::from(qs[j] >> 4) | h1) as i32 - 16) * i32::from(y[j + 16]);
    }
    s
}

#[inline(always)]
fn isum_q8_0(qs: &[u8], y: &[i8]) -> i32 {
    let (qs, y) = (&qs[..32], &y[..32]);
    let mut s = 0i32;
    for j in 0..32 {
        s += i32::from(qs[j] as i8) * i32::from(y[j]);
    }
    s
}

/// Q4_K super-block: `(isum, imin)`.
#[inline(always)]
fn isums_q4k(b: &[u8], y: &[i8], bsums: &[i16]) -> (i32, i32) {
    let scales = &b[4..16];
    let qs = &b[16..144];
    let (y, bsums) = (&y[..256], &bsums[..16]);
    let mut isum = 0i32;
    let mut imin = 0i32;
    for c in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * c, scales);
        let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
        imin += i32::from(m1) * (i32::from(bsums[4 * c]) + i32::from(bsums[4 * c + 1]));
        imin += i32::from(m2) * (i32::from(bsums[4 * c + 2]) + i32::from(bsums[4 * c + 3]));
        let q = &qs[32 * c..32 * c + 32];
        let ya = &y[64 * c..64 * c + 32];
        let yb = &y[64 * c + 32..64 * c + 64];
        let (mut s1, mut s2) = (0i32, 0i32);
        for l in 0..32 {
            s1 += i32::from(q[l] & 0xF) * i32::from(ya[l]);
            s2 += i32::from(q[l] >> 4) * i32::from(yb[l]);
        }
        isum += i32::from(sc1) * s1 + i32::from(sc2) * s2;
    }
    (isum, imin)
}

/// Q6_K super-block: `isum`.
#[inline(always)]
fn isum_q6k(b: &[u8], y: &[i8]) -> i32 {
    let y = &y[..256];
    let mut isum = 0i32;
    for half in 0..2 {
        let ql = &b[64 * half..64 * half + 64];
        let qh = &b[128 + 32 * half..128 + 32 * half + 32];
        let sc = &b[192 + 8 * half..192 + 8 * half + 8];
        let y = &y[128 * half..128 * half + 128];
        // Group g of 16 values uses scale sc[g].
        let mut g = [0i32; 8];
        for is in 0..2 {
            let (mut a1, mut a2, mut a3, mut a4) = (0i32, 0i32, 0i32, 0i32);
            for l in 16 * is..16 * is + 16 {
                let q1 = i32::from((ql[l] & 0xF) | (qh[l] & 3) << 4) - 32;
                let q2 = i32::from((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
                let q3 = i32::from((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                let q4 = i32::from((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                a1 += q1 * i32::from(y[l]);
                a2 += q2 * i32::from(y[l + 32]);
                a3 += q3 * i32::from(y[l + 64]);
                a4 += q4 * i32::from(y[l + 96]);
            }
            g[is] = a1;
            g[is + 2] = a2;
            g[is + 4] = a3;
            g[is + 6] = a4;
        }
        for k in 0..8 {
            isum += i32::from(sc[k] as i8) * g[k];
        }
    }
    isum
}

// ---- Row dots: per-block terms summed in the canonical order (`fold_lanes`). ----

#[inline(always)]
pub(crate) fn dot_q4_0(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut lanes = [0f32; LANES];
    for (i, ((b, y), &da)) in w
        .chunks_exact(18)
        .zip(a.qs.chunks_exact(32))
        .zip(a.d)
        .enumerate()
    {
        lanes[i % LANES] += term_d(rd_f16(b, 0), da, isum_q4_0(&b[2..], y));
    }
    fold_lanes(&lanes)
}

#[inline(always)]
pub(crate) fn dot_q4_1(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut lanes = [0f32; LANES];
    for (i, (((b, y), &da), &sa)) in w
        .chunks_exact(20)
        .zip(a.qs.chunks_exact(32))
        .zip(a.d)
        .zip(a.s)
        .enumerate()
    {
        lanes[i % LANES] += term_dm(rd_f16(b, 0), da, isum_q4_1(&b[4..], y), rd_f16(b, 2), sa);
    }
    fold_lanes(&lanes)
}

#[inline(always)]
pub(crate) fn dot_q5_0(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut lanes = [0f32; LANES];
    for (i, ((b, y), &da)) in w
        .chunks_exact(22)
        .zip(a.qs.chunks_exact(32))
        .zip(a.d)
        .enumerate()
    {
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        lanes[i % LANES] += term_d(rd_f16(b, 0), da, isum_q5_0(qh, &b[6..], y));
    }
    fold_lanes(&lanes)
}

#[inline(always)]
pub(crate) fn dot_q8_0(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut lanes = [0f32; LANES];
    for (i, ((b, y), &da)) in w
        .chunks_exact(34)
        .zip(a.qs.chunks_exact(32))
        .zip(a.d)
        .enumerate()
    {
        lanes[i % LANES] += term_d(rd_f16(b, 0), da, isum_q8_0(&b[2..], y));
    }
    fold_lanes(&lanes)
}

#[inline(always)]
pub(crate) fn dot_q4k(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut lanes = [0f32; LANES];
    for (i, (((b, y), &da), bs)) in w
        .chunks_exact(144)
        .zip(a.qs.chunks_exact(256))
        .zip(a.d)
        .zip(a.bsums.chunks_exact(16))
        .enumerate()
    {
        let (isum, imin) = isums_q4k(b, y, bs);
        lanes[i % LANES] += term_k4(rd_f16(b, 0), rd_f16(b, 2), da, isum, imin);
    }
    fold_lanes(&lanes)
}

#[inline(always)]
pub(crate) fn dot_q6k(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut lanes = [0f32; LANES];
    for (i, ((b, y), &da)) in w
        .chunks_exact(210)
        .zip(a.qs.chunks_exact(256))
        .zip(a.d)
        .enumerate()
    {
        lanes[i % LANES] += term_d(rd_f16(b, 208), da, isum_q6k(b, y));
    }
    fold_lanes(&lanes)
}

// ---- Kernel drivers. ----

/// Defines a kernel `fn $name(&Job, &mut [f32])` from a row dot `$dot` and a two-pair
/// dot `$dot2` (two (weight row, activation row) pairs, results as `$dot` would give).
/// Activation rows go in cache tiles, weight rows next, activation rows of the tile
/// innermost; pairs of weight rows (one activation row) or pairs of activation rows
/// (several) go to `$dot2` so that their independent sums overlap.
macro_rules! quant_kernel {
    ($(#[$attr:meta])* fn $name:ident = $dot:path, $dot2:path) => {
        $(#[$attr])*
        fn $name(job: &$crate::quant::Job<'_>, out: &mut [f32]) {
            let rb = job.row_bytes;
            if job.t1 - job.t0 == 1 {
                let a = job.acts.row(job.t0);
                let mut pairs = job.w.chunks_exact(2 * rb);
                let mut outs = out.chunks_exact_mut(2);
                for (i, (o, w)) in (&mut outs).zip(&mut pairs).enumerate() {
                    // Weights stream from memory once per token: fetch the next pair early.
                    if let Some(next) = job.w.get((2 * i + 2) * rb..(2 * i + 4) * rb) {
                        $crate::quant::prefetch(next);
                    }
                    let s = $dot2([&w[..rb], &w[rb..]], [a, a]);
                    o.copy_from_slice(&s);
                }
                if let (Some(o), w) = (outs.into_remainder().first_mut(), pairs.remainder()) {
                    *o = $dot(w, a);
                }
                return;
            }
            let mut t0 = job.t0;
            while t0 < job.t1 {
                let t1 = (t0 + job.tile).min(job.t1);
                for (r, w) in job.w.chunks_exact(rb).enumerate() {
                    let mut t = t0;
                    while t + 2 <= t1 {
                        let s = $dot2([w, w], [job.acts.row(t), job.acts.row(t + 1)]);
                        out[(t - job.t0) * job.stride + r] = s[0];
                        out[(t + 1 - job.t0) * job.stride + r] = s[1];
                        t += 2;
                    }
                    if t < t1 {
                        out[(t - job.t0) * job.stride + r] = $dot(w, job.acts.row(t));
                    }
                }
                t0 = t1;
            }
        }
    };
}
pub(crate) use quant_kernel;

/// Rows of F32/F16 weights computed together (independent sequential sums, interleaved).
pub(crate) const FLOAT_ROWS: usize = 8;

/// Element `i` of an F32 (4-byte) or F16 (2-byte) row, as `f32`.
#[inline(always)]
pub(crate) fn load_float<const F16: bool>(w: &[u8], i: usize) -> f32 {
    if F16 {
        super::blocks::f16_to_f32(u16::from_le_bytes([w[2 * i], w[2 * i + 1]]))
    } else {
        f32::from_le_bytes([w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]])
    }
}

/// The first `len` bytes of each of `R` consecutive `rb`-byte rows of `w`.
#[inline(always)]
pub(crate) fn split_rows<const R: usize>(w: &[u8], rb: usize, len: usize) -> [&[u8]; R] {
    let mut rows = [&w[..0]; R];
    for (k, r) in rows.iter_mut().enumerate() {
        *r = &w[k * rb..k * rb + len];
    }
    rows
}

/// `R` plain sequential dot products of consecutive rows (`rb` bytes each) of `w` with `x`.
#[inline(always)]
pub(crate) fn dot_float_rows<const R: usize, const F16: bool>(
    w: &[u8],
    rb: usize,
    x: &[f32],
) -> [f32; R] {
    let n = x.len();
    let width = if F16 { 2 } else { 4 };
    let rows = split_rows::<R>(w, rb, n * width);
    let mut acc = [0f32; R];
    for (i, &xi) in x.iter().enumerate() {
        for k in 0..R {
            acc[k] += load_float::<F16>(rows[k], i) * xi;
        }
    }
    acc
}

/// Defines an F32/F16 kernel: plain sequential `f32` dot products (the same order as
/// [`matmul_reference_f32`](super::matmul_reference_f32)), [`FLOAT_ROWS`] rows at a time
/// with `$dot8`, the remaining rows one by one.
macro_rules! float_kernel {
    ($(#[$attr:meta])* fn $name:ident<$f16:literal> = $dot8:path) => {
        $(#[$attr])*
        fn $name(job: &$crate::quant::Job<'_>, out: &mut [f32]) {
            use $crate::quant::portable::{dot_float_rows, FLOAT_ROWS};
            let rb = job.row_bytes;
            let rows = job.w.len() / rb;
            let full = rows / FLOAT_ROWS * FLOAT_ROWS;
            let mut t0 = job.t0;
            while t0 < job.t1 {
                let t1 = (t0 + job.tile).min(job.t1);
                for r in (0..full).step_by(FLOAT_ROWS) {
                    let w = &job.w[r * rb..(r + FLOAT_ROWS) * rb];
                    for t in t0..t1 {
                        let s: [f32; FLOAT_ROWS] = $dot8(w, rb, job.acts.row(t).f);
                        let o = (t - job.t0) * job.stride + r;
                        out[o..o + FLOAT_ROWS].copy_from_slice(&s);
                    }
                }
                for r in full..rows {
                    let w = &job.w[r * rb..(r + 1) * rb];
                    for t in t0..t1 {
                        let [s] = dot_float_rows::<1, $f16>(w, rb, job.acts.row(t).f);
                        out[(t - job.t0) * job.stride + r] = s;
                    }
                }
                t0 = t1;
            }
        }
    };
}
pub(crate) use float_kernel;

#[inline(always)]
fn dot8_f32(w: &[u8], rb: usize, x: &[f32]) -> [f32; FLOAT_ROWS] {
    dot_float_rows::<FLOAT_ROWS, false>(w, rb, x)
}

#[inline(always)]
fn dot8_f16(w: &[u8], rb: usize, x: &[f32]) -> [f32; FLOAT_ROWS] {
    dot_float_rows::<FLOAT_ROWS, true>(w, rb, x)
}

float_kernel!(fn k_f32<false> = dot8_f32);
float_kernel!(fn k_f16<true> = dot8_f16);

/// Two row dots, one after the other.
macro_rules! pair_fn {
    ($($two:ident => $one:ident;)*) => {$(
        #[inline(always)]
        fn $two(w: [&[u8]; 2], a: [ActRow<'_>; 2]) -> [f32; 2] {
            [$one(w[0], a[0]), $one(w[1], a[1])]
        }
    )*};
}

pair_fn! {
    dot2_q4_0 => dot_q4_0;
    dot2_q4_1 => dot_q4_1;
    dot2_q5_0 => dot_q5_0;
    dot2_q8_0 => dot_q8_0;
    dot2_q4k => dot_q4k;
    dot2_q6k => dot_q6k;
}

quant_kernel!(fn k_q4_0 = dot_q4_0, dot2_q4_0);
quant_kernel!(fn k_q4_1 = dot_q4_1, dot2_q4_1);
quant_kernel!(fn k_q5_0 = dot_q5_0, dot2_q5_0);
quant_kernel!(fn k_q8_0 = dot_q8_0, dot2_q8_0);
quant_kernel!(fn k_q4k = dot_q4k, dot2_q4k);
quant_kernel!(fn k_q6k = dot_q6k, dot2_q6k);

/// The portable kernel for a weight type.
pub(crate) fn kernel(dtype: GgmlType) -> Kernel {
    match dtype {
        GgmlType::F32 => k_f32,
        GgmlType::F16 => k_f16,
        GgmlType::Q4_0 => k_q4_0,
        GgmlType::Q4_1 => k_q4_1,
        GgmlType::Q5_0 => k_q5_0,
        GgmlType::Q8_0 => k_q8_0,
        GgmlType::Q4K => k_q4k,
        GgmlType::Q6K => k_q6k,
        GgmlType::Q8_1 | GgmlType::Q8K => unreachable!("not a weight type"),
    }
}
