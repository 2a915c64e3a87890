//! GGML block formats and the quantised matrix kernels.
//!
//! Weights stay in their GGML byte layout (as memory-mapped from the GGUF file). Activations
//! are quantised once per matrix product into a [`QActs`] buffer with the type llama.cpp
//! pairs with each weight type ([`act_type`]), and [`matmul`] computes the dot product of
//! every weight row with every activation row.
//!
//! # Determinism
//!
//! Every output element is bit-identical whatever the thread count and whichever kernel path
//! (SIMD or portable) computed it. All paths use one canonical float order:
//!
//! - inside a block the integer dot products are exact (`i32`), so any SIMD order works;
//! - each block contributes one `f32` term computed with exactly the same operations in
//!   every path (see the `term_*` functions in the portable module), and the terms are
//!   added to an `f32` accumulator sequentially in block order (no FMA contraction);
//! - F32/F16 weights use a plain sequential `f32` dot product, element by element.
//!
//! Threads split the weight rows (each task takes every activation row), never the
//! reduction.
//!
//! # Kernel paths
//!
//! - `avx2` (x86-64 with AVX2, FMA and F16C, detected at run time): hand-written
//!   intrinsics for every weight type. The 32-element formats reduce the integer sums of
//!   8 blocks at a time and work on two (weight row, activation row) pairs at once so that
//!   the sequential float sums overlap; F32/F16 do 8 rows at once with a transpose.
//!   With several activation rows the quantised types take a GEMM path: each weight row is
//!   unpacked once (quants to bytes, scales to `f32`/`i16`) and then dotted with every
//!   activation row of the cache tile, four at a time, with the same canonical terms.
//!   For the 32-element formats the GEMM kernel stores weights and activations with 8
//!   blocks transposed into one group, so the integer sums of 8 blocks come out lane-wise
//!   with no horizontal reduction, and register-blocks 2 weight rows × 4 activation rows.
//! - `avx512vnni` (AVX2 plus AVX-512 F/VL/VNNI, detected at run time): the AVX2 kernels,
//!   with `dpbusd` in the 32-element GEMM kernel and 4 weight rows × 4 activation rows.
//! - `scalar`: portable Rust, also the reference the AVX2 path is tested against.
//!
//! For decode, call [`matmul`] from inside `pool.install(..)` (for example around the
//! whole forward pass): from outside the pool every call pays for waking the workers.

mod blocks;
mod packed;
mod portable;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

use half::f16;
use rayon::prelude::*;

use crate::lockstep::{Shared, Team};

/// Dot product of an `f32` slice with an equal-length half-precision slice (each half
/// converted exactly to `f32`), in the canonical 8-lane order of the kernels (element `i`
/// to lane `i % 8` for the whole 8-element chunks, lanes folded as
/// [`portable::fold_lanes`], then the remaining elements added one by one), without fused
/// multiply-add. Plain Rust: inlined into code compiled for AVX2, LLVM keeps the lanes in
/// one register, with the same additions in the same order.
#[inline(always)]
pub(crate) fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    portable::dot_f16(a, b)
}

/// Attention scores: `dot_f16(q, key j) * scale` for every key `j` in `keys`, key `j`
/// being `kc[j * stride + off..][..q.len()]`, pushed onto `out` in order.
#[inline(always)]
pub(crate) fn attn_scores(
    q: &[f32],
    kc: &[f16],
    stride: usize,
    off: usize,
    keys: std::ops::Range<usize>,
    scale: f32,
    out: &mut Vec<f32>,
) {
    for j in keys {
        out.push(dot_f16(q, &kc[j * stride + off..j * stride + off + q.len()]) * scale);
    }
}

/// Softmax numerators: every `x` becomes `e^(x - max)` ([`portable::exp_nonpos`]);
/// returns their sum, added in order in `f64`.
#[inline(always)]
pub(crate) fn exp_shifted(xs: &mut [f32], max: f32) -> f64 {
    portable::exp_shifted(xs, max)
}

/// Attention's weighted sum of value rows (see [`portable::weighted_rows`]).
#[inline(always)]
pub(crate) fn weighted_rows(p: &[f32], v: &[f16], stride: usize, o: &mut [f32]) {
    portable::weighted_rows(p, v, stride, o);
}

/// SwiGLU in place: `gate[i] = silu(gate[i]) * up[i]`, through Flurry's own `exp` (see
/// [`portable::swiglu`]); the AVX2 path gives the same bits.
#[allow(unsafe_code)]
pub(crate) fn swiglu(gate: &mut [f32], up: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        // SAFETY: the CPU has AVX2, FMA and F16C (`x86::available`).
        return unsafe { x86::swiglu(gate, up) };
    }
    portable::swiglu(gate, up);
}

/// Asks the CPU to bring `bytes` into its caches (no effect on results; a no-op where
/// there is no prefetch instruction).
#[inline(always)]
pub(crate) fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    x86::prefetch(bytes);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// [`round_f16_nonneg`] of every value.
pub(crate) fn round_f16_slice(xs: &mut [f32]) {
    for x in xs {
        *x = round_f16_nonneg(*x);
    }
}

/// [`round_f16_slice`] for callers compiled with AVX2, FMA and F16C (F16C conversions).
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::round_f16_slice as round_f16_slice_avx2;

/// [`attn_scores`], [`exp_shifted`] and [`weighted_rows`] for callers compiled with AVX2,
/// FMA and F16C: the same operations in the same order, 8 lanes at a time.
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{
    attn_scores as attn_scores_avx2, exp_shifted as exp_shifted_avx2,
    weighted_rows as weighted_rows_avx2,
};

/// `x` rounded to the nearest half-precision value (ties to even), as `f32`, for
/// `0 <= x <= 65504`: exactly `f16::from_f32(x).to_f32()`, in plain arithmetic that
/// compilers can vectorise.
#[inline(always)]
pub(crate) fn round_f16_nonneg(x: f32) -> f32 {
    // Below 2^-14 half precision is subnormal: multiples of 2^-24.
    if x < 1.0 / 16384.0 {
        return (x * 16_777_216.0).round_ties_even() * (1.0 / 16_777_216.0);
    }
    // Normal: keep 10 of the 23 mantissa bits, rounding to nearest, ties to even.
    let b = x.to_bits();
    let r = b + 0xFFF + ((b >> 13) & 1);
    f32::from_bits(r & !0x1FFF)
}

pub use crate::GgmlType;
pub use blocks::{dequantize_row, quantize_row, quantize_weights};
pub use packed::{pack_matrix, pack_row, packable, unpack_row};

/// Whether weights of `dtype` should be repacked at load on this CPU ([`pack_matrix`]):
/// every packable type wherever a SIMD kernel runs (`examples/kernel_speed.rs` compares
/// the layouts).
pub fn prefers_packed(dtype: GgmlType) -> bool {
    packed::packable(dtype) && Path::detect() != Path::Scalar
}

/// Bytes of one row of `cols` elements.
///
/// # Panics
///
/// If `cols` is not a multiple of the type's block length.
pub fn row_bytes(dtype: GgmlType, cols: usize) -> usize {
    let bl = dtype.block_len();
    assert!(
        cols.is_multiple_of(bl),
        "{cols} columns is not a whole number of {dtype} blocks ({bl})"
    );
    cols / bl * dtype.block_bytes()
}

/// Activation type used with weights of `dtype`: `None` for F32/F16 weights (whose
/// activations stay `f32`) and for the activation-only types Q8_1/Q8_K, which [`matmul`]
/// does not accept as weights.
pub fn act_type(weight: GgmlType) -> Option<GgmlType> {
    match weight {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => Some(GgmlType::Q8_0),
        GgmlType::Q4_1 => Some(GgmlType::Q8_1),
        GgmlType::Q4K | GgmlType::Q6K => Some(GgmlType::Q8K),
        GgmlType::F32 | GgmlType::F16 | GgmlType::Q8_1 | GgmlType::Q8K => None,
    }
}

/// Whether [`matmul`] accepts weights of this type.
pub fn is_weight_type(dtype: GgmlType) -> bool {
    !matches!(dtype, GgmlType::Q8_1 | GgmlType::Q8K)
}

/// A borrowed weight matrix: `rows` rows of `cols` elements, row-major GGML blocks.
#[derive(Debug, Clone, Copy)]
pub struct QMatrix<'a> {
    /// Element type of `data`.
    pub dtype: GgmlType,
    /// Number of rows (outputs of a matrix-vector product).
    pub rows: usize,
    /// Elements per row (the reduction length).
    pub cols: usize,
    /// `rows * row_bytes(dtype, cols)` bytes.
    pub data: &'a [u8],
    /// Whether `data` is in the packed layout of [`pack_matrix`] (rows keep their size).
    pub packed: bool,
}

impl QMatrix<'_> {
    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        row_bytes(self.dtype, self.cols)
    }

    /// The bytes of row `r`.
    pub fn row(&self, r: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }
}

/// Reusable quantised activations: `n` rows of `cols` elements, quantised for one weight
/// type. Buffers are kept between calls, so a warm `QActs` does not allocate.
#[derive(Debug, Default)]
pub struct QActs {
    /// Activation type (`None`: plain `f32` in `f`).
    act: Option<GgmlType>,
    n: usize,
    cols: usize,
    /// F32 activations, `n * cols`.
    f: Vec<f32>,
    /// Quantised values, `n * cols`.
    qs: Vec<i8>,
    /// Block scales as `f32` (rounded through f16 for Q8_0/Q8_1), one per block.
    d: Vec<f32>,
    /// Q8_1: `d * sum(qs)` per block, rounded through f16.
    s: Vec<f32>,
    /// Q8_K: sums of each group of 16 values.
    bsums: Vec<i16>,
    /// These rows in the packed kernels' group layout, prepared by the first kernel call
    /// that reads all of them and shared by every other task and call with the same
    /// layout (key 0: stale, the buffers kept for reuse).
    #[cfg(target_arch = "x86_64")]
    prepared: std::sync::Mutex<Option<(u8, std::sync::Arc<x86::GemmActs>)>>,
}

/// One activation row, as the kernels see it (unused parts are empty).
#[derive(Clone, Copy)]
pub(crate) struct ActRow<'a> {
    pub(crate) f: &'a [f32],
    pub(crate) qs: &'a [i8],
    pub(crate) d: &'a [f32],
    pub(crate) s: &'a [f32],
    pub(crate) bsums: &'a [i16],
}

/// From this many activation rows on, [`QActs::quantize`] splits the rows across the
/// pool it is called from.
const PAR_QUANT_ROWS: usize = 8;

/// Quantises whole rows `x` to activation type `act`: quants `qs`, scales `d`, and for
/// Q8_1 the sums `s`, for Q8_K the group sums `bsums`.
fn quantize_part(
    act: GgmlType,
    x: &[f32],
    qs: &mut [i8],
    d: &mut [f32],
    s: &mut [f32],
    bsums: &mut [i16],
) {
    match act {
        GgmlType::Q8_0 | GgmlType::Q8_1 => {
            // Q8_1 also keeps each block's sum (as `d * sum`, rounded through f16).
            let sums = act == GgmlType::Q8_1;
            #[cfg(target_arch = "x86_64")]
            if Path::detect() != Path::Scalar {
                // The same results, bit for bit (tested), a vector at a time.
                let n = if sums { d.len() } else { 0 };
                x86::quantize_q8_blocks(x, qs, d, &mut s[..n]);
                return;
            }
            for (i, (xb, qb)) in x.chunks_exact(32).zip(qs.chunks_exact_mut(32)).enumerate() {
                let (dh, sh) =
                    blocks::quantize_block_q8(xb.try_into().unwrap(), qb.try_into().unwrap());
                d[i] = blocks::f16_to_f32(dh);
                if sums {
                    s[i] = blocks::f16_to_f32(sh);
                }
            }
        }
        GgmlType::Q8K => {
            for (((xb, qb), d), bs) in x
                .chunks_exact(256)
                .zip(qs.chunks_exact_mut(256))
                .zip(d)
                .zip(bsums.chunks_exact_mut(16))
            {
                *d = blocks::quantize_block_q8k(
                    xb.try_into().unwrap(),
                    qb.try_into().unwrap(),
                    bs.try_into().unwrap(),
                );
            }
        }
        _ => unreachable!("act_type returns only Q8_0, Q8_1 and Q8_K"),
    }
}

impl QActs {
    /// Quantises `x` (`x.len() / cols` rows of `cols` elements) for a product with weights
    /// of type `weight`, replacing the previous contents.
    ///
    /// # Panics
    ///
    /// If `cols` is zero, `x.len()` is not a multiple of `cols`, or `cols` is not a whole
    /// number of blocks of the activation type.
    pub fn quantize(&mut self, weight: GgmlType, x: &[f32], cols: usize) {
        self.quantize_with(weight, x, cols, rayon::current_thread_index().is_some());
    }

    /// [`QActs::quantize`] on the calling thread only, inside a pool too (one task's
    /// share of a split, which the pool already runs in parallel).
    ///
    /// # Panics
    ///
    /// As [`QActs::quantize`].
    pub fn quantize_serial(&mut self, weight: GgmlType, x: &[f32], cols: usize) {
        self.quantize_with(weight, x, cols, false);
    }

    fn quantize_with(&mut self, weight: GgmlType, x: &[f32], cols: usize, par: bool) {
        assert!(cols > 0, "zero columns");
        assert!(
            x.len().is_multiple_of(cols),
            "{} values is not a whole number of rows of {cols}",
            x.len()
        );
        let act = act_type(weight);
        let n = x.len() / cols;
        #[cfg(target_arch = "x86_64")]
        if let Some((key, _)) = self
            .prepared
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            *key = 0;
        }
        self.act = act;
        self.n = n;
        self.cols = cols;
        self.f.clear();
        self.qs.clear();
        self.d.clear();
        self.s.clear();
        self.bsums.clear();
        let Some(act) = act else {
            self.f.extend_from_slice(x);
            return;
        };
        let bl = act.block_len();
        assert!(
            cols.is_multiple_of(bl),
            "{cols} columns is not a whole number of {act} blocks ({bl})"
        );
        let nb = x.len() / bl;
        self.qs.resize(x.len(), 0);
        self.d.resize(nb, 0.0);
        self.s
            .resize(if act == GgmlType::Q8_1 { nb } else { 0 }, 0.0);
        self.bsums.resize(
            if act == GgmlType::Q8K {
                x.len() / 16
            } else {
                0
            },
            0,
        );
        // Every block is quantised on its own, so a split by rows changes nothing. Inside
        // a pool (the model's layers) several rows go to its threads; elsewhere (tests,
        // callers without a pool) everything stays on the calling thread.
        if n < PAR_QUANT_ROWS || !par {
            quantize_part(
                act,
                x,
                &mut self.qs,
                &mut self.d,
                &mut self.s,
                &mut self.bsums,
            );
            return;
        }
        use rayon::prelude::*;
        let rows = n.div_ceil(rayon::current_num_threads());
        let (xc, dc) = (rows * cols, rows * (cols / bl));
        let parts = x
            .par_chunks(xc)
            .zip(self.qs.par_chunks_mut(xc))
            .zip(self.d.par_chunks_mut(dc));
        match act {
            GgmlType::Q8_1 => parts
                .zip(self.s.par_chunks_mut(dc))
                .for_each(|(((x, q), d), s)| {
                    quantize_part(act, x, q, d, s, &mut []);
                }),
            GgmlType::Q8K => parts
                .zip(self.bsums.par_chunks_mut(xc / 16))
                .for_each(|(((x, q), d), b)| quantize_part(act, x, q, d, &mut [], b)),
            _ => parts.for_each(|((x, q), d)| quantize_part(act, x, q, d, &mut [], &mut [])),
        }
    }

    /// Number of activation rows.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Elements per activation row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The activation type (`None`: plain `f32`).
    pub fn act_type(&self) -> Option<GgmlType> {
        self.act
    }

    /// Bytes of one activation row (a rough figure, used to size cache tiles).
    fn row_footprint(&self) -> usize {
        match self.act {
            None => self.cols * 4,
            Some(t) => row_bytes(t, self.cols),
        }
    }

    #[inline]
    pub(crate) fn row(&self, t: usize) -> ActRow<'_> {
        let c = self.cols;
        match self.act {
            None => ActRow {
                f: &self.f[t * c..(t + 1) * c],
                qs: &[],
                d: &[],
                s: &[],
                bsums: &[],
            },
            Some(act) => {
                let nb = c / act.block_len();
                ActRow {
                    f: &[],
                    qs: &self.qs[t * c..(t + 1) * c],
                    d: &self.d[t * nb..(t + 1) * nb],
                    s: if self.s.is_empty() {
                        &[]
                    } else {
                        &self.s[t * nb..(t + 1) * nb]
                    },
                    bsums: if self.bsums.is_empty() {
                        &[]
                    } else {
                        &self.bsums[t * (c / 16)..(t + 1) * (c / 16)]
                    },
                }
            }
        }
    }
}

/// A unit of work for a kernel: weight rows `w` (whole rows of `row_bytes`) against
/// activation rows `t0..t1`. The result for weight row `r` (counted within `w`) and
/// activation row `t` goes to `out[(t - t0) * stride + r]`.
pub(crate) struct Job<'a> {
    pub(crate) w: &'a [u8],
    pub(crate) row_bytes: usize,
    pub(crate) acts: &'a QActs,
    pub(crate) t0: usize,
    pub(crate) t1: usize,
    pub(crate) stride: usize,
    /// Activation rows per cache tile.
    pub(crate) tile: usize,
}

/// A kernel: computes one [`Job`].
pub(crate) type Kernel = fn(&Job<'_>, &mut [f32]);

/// Kernel implementation family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// Portable Rust (auto-vectorised for the compile target only).
    Scalar,
    /// AVX2 + FMA + F16C, detected at run time.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// [`Path::Avx2`] with AVX-512 VNNI (F, VL, VNNI) GEMM kernels, detected at run time.
    #[cfg(target_arch = "x86_64")]
    Vnni,
}

impl Path {
    /// The best path this CPU supports.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if x86::vnni_available() {
            return Path::Vnni;
        }
        #[cfg(target_arch = "x86_64")]
        if x86::available() {
            return Path::Avx2;
        }
        Path::Scalar
    }

    /// Every path this CPU can run (for tests).
    #[cfg(test)]
    pub(crate) fn all_available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut v = vec![Path::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if x86::available() {
                v.push(Path::Avx2);
            }
            if x86::vnni_available() {
                v.push(Path::Vnni);
            }
        }
        v
    }

    fn kernel(self, dtype: GgmlType, packed: bool) -> Kernel {
        assert!(
            is_weight_type(dtype),
            "{dtype} is an activation type, not a weight type"
        );
        if packed {
            return match self {
                Path::Scalar => packed::portable_kernel(dtype),
                #[cfg(target_arch = "x86_64")]
                Path::Avx2 => {
                    x86::packed_kernel(dtype, false).expect("AVX2 kernels need AVX2, FMA and F16C")
                }
                #[cfg(target_arch = "x86_64")]
                Path::Vnni => {
                    x86::packed_kernel(dtype, true).expect("VNNI kernels need AVX-512 F/VL/VNNI")
                }
            };
        }
        match self {
            Path::Scalar => portable::kernel(dtype),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => x86::kernel(dtype, false).expect("AVX2 kernels need AVX2, FMA and F16C"),
            #[cfg(target_arch = "x86_64")]
            Path::Vnni => x86::kernel(dtype, true).expect("VNNI kernels need AVX-512 F/VL/VNNI"),
        }
    }
}

/// Name of the kernel path chosen at run time: `"avx512vnni"`, `"avx2"` or `"scalar"`.
pub fn kernel_path() -> &'static str {
    match Path::detect() {
        Path::Scalar => "scalar",
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => "avx2",
        #[cfg(target_arch = "x86_64")]
        Path::Vnni => "avx512vnni",
    }
}

fn check(w: &QMatrix<'_>, acts: &QActs, out: &[f32]) {
    check_len(w, acts, out.len());
}

fn check_len(w: &QMatrix<'_>, acts: &QActs, out_len: usize) {
    assert!(is_weight_type(w.dtype), "{} is not a weight type", w.dtype);
    assert!(
        !w.packed || packable(w.dtype),
        "{} has no packed layout",
        w.dtype
    );
    assert_eq!(
        w.data.len(),
        w.rows * w.row_bytes(),
        "{} matrix {}x{}: wrong data length",
        w.dtype,
        w.rows,
        w.cols
    );
    assert_eq!(
        acts.act,
        act_type(w.dtype),
        "activations were quantised for another weight type than {}",
        w.dtype
    );
    assert_eq!(
        acts.cols, w.cols,
        "activation rows have {} columns, weights {}",
        acts.cols, w.cols
    );
    assert_eq!(out_len, acts.n * w.rows, "output length");
}

/// Activation rows per cache tile (about 128 KiB of activations).
fn tile_rows(acts: &QActs) -> usize {
    ((128 << 10) / acts.row_footprint().max(1)).max(1)
}

/// `out[t * w.rows + r] = dot(w row r, activation row t)` for every activation row `t`,
/// split across the threads of `pool`. Bit-identical to [`matmul_serial`].
///
/// # Panics
///
/// If the shapes disagree (`out.len() != acts.n() * w.rows`, different column counts, wrong
/// data length) or `acts` was quantised for a weight type with another activation type.
pub fn matmul(w: QMatrix<'_>, acts: &QActs, out: &mut [f32], pool: &rayon::ThreadPool) {
    matmul_with(Path::detect(), w, acts, out, pool, PAR_MIN_WORK);
}

/// Below this many weight bytes times activation rows, threading costs more than it saves.
pub(crate) const PAR_MIN_WORK: usize = 64 << 10;

/// From this many activation rows per thread on, [`matmul`] splits the activation rows
/// between the threads instead of the weight rows. With fewer, the weight split wins: it
/// keeps the batched kernels' groups of activation rows whole, and every task reads the
/// same activation rows (the packed kernels prepare them once, `QActs::prepared`).
pub(crate) const SPLIT_ACT_ROWS: usize = 32;

pub(crate) fn matmul_with(
    path: Path,
    w: QMatrix<'_>,
    acts: &QActs,
    out: &mut [f32],
    pool: &rayon::ThreadPool,
    min_work: usize,
) {
    check(&w, acts, out);
    let threads = pool.current_num_threads();
    let n = acts.n;
    if threads <= 1 || w.rows == 0 || n == 0 || w.data.len() * n < min_work {
        return matmul_serial_with(path, w, acts, out);
    }
    let kernel = path.kernel(w.dtype, w.packed);
    let rb = w.row_bytes();
    let rows = w.rows;
    let tile = tile_rows(acts);
    if n >= threads * SPLIT_ACT_ROWS {
        // Many activation rows (prefill): each task takes an equal run of them against all
        // the weights and writes its own rows of `out`. It prepares only its activations,
        // and nothing is copied afterwards; the weights are unpacked once per cache tile
        // of activation rows, as on one thread.
        let per = n.div_ceil(threads);
        pool.install(|| {
            out.par_chunks_mut(per * rows)
                .enumerate()
                .for_each(|(c, o)| {
                    let job = Job {
                        w: w.data,
                        row_bytes: rb,
                        acts,
                        t0: c * per,
                        t1: c * per + o.len() / rows,
                        stride: rows,
                        tile,
                    };
                    kernel(&job, o);
                });
        });
        return;
    }
    // Taken on the calling thread (the install closure may run on any worker).
    let mut parts = if n > 1 { PARTS.take() } else { Vec::new() };
    pool.install(|| {
        // Split the weight rows; every task takes all activation rows, so each thread
        // streams (and the GEMM kernels unpack) a disjoint part of the weights once.
        let chunk = rows.div_ceil(4 * threads).max(16);
        if n == 1 {
            one_row_split(path, w, acts, out, threads);
            return;
        }
        // Several activation rows: each task fills its own (activation row, weight row)
        // block of a scratch buffer kept between calls (a fresh one would be page-faulted
        // in on every call), then the blocks are copied into place.
        if parts.len() < n * rows {
            parts.resize(n * rows, 0.0);
        }
        let parts_ref = &mut parts[..n * rows];
        parts_ref
            .par_chunks_mut(n * chunk)
            .enumerate()
            .for_each(|(c, o)| kernel(&block_job(w, acts, c * chunk, o.len() / n, tile), o));
        let parts_ref = &parts[..n * rows];
        out.par_chunks_mut(rows)
            .enumerate()
            .for_each(|(t, out_t)| unblock_row(parts_ref, n, chunk, t, out_t));
    });
    if n > 1 && parts.len() <= PARTS_KEEP {
        PARTS.set(parts);
    }
}

/// One activation row against `w`'s rows, split into about 4 chunks of rows per thread
/// (call from inside the pool).
fn one_row_split(path: Path, w: QMatrix<'_>, acts: &QActs, out: &mut [f32], threads: usize) {
    let chunk = w.rows.div_ceil(4 * threads).max(16);
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(c, o)| one_row_rows(path, w, acts, c * chunk, o));
}

/// Rows `r0..r0 + out.len()` of `w` times the one activation row of `acts`, into `out`:
/// a task of a one-row product, with the same result for each row whatever the task's
/// bounds. The caller checks the shapes ([`check`]).
pub(crate) fn one_row_rows(path: Path, w: QMatrix<'_>, acts: &QActs, r0: usize, out: &mut [f32]) {
    let rb = w.row_bytes();
    let job = Job {
        w: &w.data[r0 * rb..(r0 + out.len()) * rb],
        row_bytes: rb,
        acts,
        t0: 0,
        t1: 1,
        stride: 0,
        tile: tile_rows(acts),
    };
    path.kernel(w.dtype, w.packed)(&job, out);
}

/// One step of a lockstep team ([`crate::lockstep`]), on its thread `me`: each `out` =
/// its matrix times the activation rows of `acts`. The matrices' rows are claimed in
/// chunks (about 8 per thread and matrix, at least 16 rows; [`Team::claim`]), so a faster
/// core takes more. Every thread of the team calls this with the same matrices (each may pass
/// its own copy of the same activations); it returns after the barrier that ends the
/// step. Bit-identical to [`matmul_serial`] of each. With several activation rows (a
/// batched decode step), each task takes its chunk of weight rows against all of them.
///
/// # Panics
///
/// As [`matmul`], for any of the pairs.
pub(crate) fn team_products(
    team: &Team,
    me: usize,
    jobs: &[(QMatrix<'_>, &Shared<'_, f32>)],
    acts: &QActs,
) {
    team_products_with(Path::detect(), team, me, jobs, acts);
}

#[allow(unsafe_code)]
pub(crate) fn team_products_with(
    path: Path,
    team: &Team,
    me: usize,
    jobs: &[(QMatrix<'_>, &Shared<'_, f32>)],
    acts: &QActs,
) {
    let chunk = |w: &QMatrix<'_>| w.rows.div_ceil(8 * team.threads()).max(16);
    let mut tasks = 0;
    for (w, out) in jobs {
        check_len(w, acts, out.len());
        tasks += w.rows.div_ceil(chunk(w));
    }
    // Several activation rows: a task's (activation row, weight row) block goes to this
    // thread's scratch, then each row's piece to its place in `out`.
    let n = acts.n;
    let mut block = if n > 1 { PARTS.take() } else { Vec::new() };
    while let Some(mut i) = team.claim(me, tasks) {
        for (w, out) in jobs {
            let (c, tasks_w) = (chunk(w), w.rows.div_ceil(chunk(w)));
            if i >= tasks_w {
                i -= tasks_w;
                continue;
            }
            let rows = i * c..((i + 1) * c).min(w.rows);
            let (r0, m) = (rows.start, rows.len());
            if n == 1 {
                // SAFETY: task `i` of this step is this thread's alone, and the tasks of a
                // matrix cover disjoint rows; nobody reads `out` before the barrier below.
                one_row_rows(path, *w, acts, r0, unsafe { out.part_mut(rows) });
                break;
            }
            if block.len() < n * m {
                block.resize(n * m, 0.0);
            }
            let tile = tile_rows(acts);
            path.kernel(w.dtype, w.packed)(&block_job(*w, acts, r0, m, tile), &mut block[..n * m]);
            for (t, piece) in block[..n * m].chunks_exact(m).enumerate() {
                let at = t * w.rows + r0;
                // SAFETY: as above: rows `r0..r0 + m` of each output row are this task's.
                unsafe { out.part_mut(at..at + m) }.copy_from_slice(piece);
            }
            break;
        }
    }
    if n > 1 && block.len() <= PARTS_KEEP {
        PARTS.set(block);
    }
    team.wait();
}

/// [`matmul`] of several weight matrices (Q, K and V; gate and up) against the same
/// activation rows, one output each. With one activation row (one sequence's decode
/// step) the products run as one parallel step whose tasks are chunks of every matrix's
/// rows, so the threads meet once instead of once per matrix; with a few rows (batched
/// decode) as one such step and one step of copies ([`many_rows_split`]). Bit-identical
/// to [`matmul`] of each.
///
/// # Panics
///
/// As [`matmul`], for any of the pairs.
pub fn matmul_many(jobs: &mut [(QMatrix<'_>, &mut [f32])], acts: &QActs, pool: &rayon::ThreadPool) {
    matmul_many_with(Path::detect(), jobs, acts, pool, PAR_MIN_WORK);
}

pub(crate) fn matmul_many_with(
    path: Path,
    jobs: &mut [(QMatrix<'_>, &mut [f32])],
    acts: &QActs,
    pool: &rayon::ThreadPool,
    min_work: usize,
) {
    let threads = pool.current_num_threads();
    let n = acts.n;
    let work = jobs.iter().map(|(w, _)| w.data.len() * n).sum::<usize>();
    let few_rows = n > 1 && n < threads * SPLIT_ACT_ROWS;
    if (n != 1 && !few_rows) || threads <= 1 || work < min_work {
        for (w, out) in jobs.iter_mut() {
            matmul_with(path, *w, acts, out, pool, min_work);
        }
        return;
    }
    for (w, out) in jobs.iter() {
        check(w, acts, out);
    }
    if few_rows {
        return many_rows_split(path, jobs, acts, pool);
    }
    pool.install(|| {
        jobs.par_iter_mut().for_each(|(w, out)| {
            if w.rows > 0 {
                one_row_split(path, *w, acts, out, threads);
            }
        });
    });
}

/// [`matmul_many_with`] for a few activation rows (batched decode): as [`matmul_with`]'s
/// split of the weight rows, with the chunks of every matrix as the tasks of one parallel
/// step and the copies into place as one more, instead of two steps per matrix. On 2
/// threads each step's wake-up and wait cost about as much as a small matrix's product.
fn many_rows_split(
    path: Path,
    jobs: &mut [(QMatrix<'_>, &mut [f32])],
    acts: &QActs,
    pool: &rayon::ThreadPool,
) {
    let n = acts.n;
    let threads = pool.current_num_threads();
    let tile = tile_rows(acts);
    let total: usize = jobs.iter().map(|(w, _)| n * w.rows).sum();
    // Taken on the calling thread (the install closure may run on any worker).
    let mut parts = PARTS.take();
    if parts.len() < total {
        parts.resize(total, 0.0);
    }
    pool.install(|| {
        // Each matrix's block of `parts`, cut into one (activation row, weight row) block
        // per chunk of weight rows, as in `matmul_with`.
        let mut tasks = Vec::new();
        let mut rest = &mut parts[..total];
        for (j, (w, _)) in jobs.iter().enumerate() {
            let (mine, later) = rest.split_at_mut(n * w.rows);
            rest = later;
            let chunk = w.rows.div_ceil(4 * threads).max(16);
            for (c, o) in mine.chunks_mut(n * chunk).enumerate() {
                tasks.push((j, c * chunk, o));
            }
        }
        tasks
            .into_par_iter()
            .with_max_len(1)
            .for_each(|(j, r0, o)| {
                let w = jobs[j].0;
                path.kernel(w.dtype, w.packed)(&block_job(w, acts, r0, o.len() / n, tile), o);
            });
        let mut rows_out = Vec::new();
        let mut at = 0;
        for (w, out) in jobs.iter_mut().filter(|(w, _)| w.rows > 0) {
            let chunk = w.rows.div_ceil(4 * threads).max(16);
            let block = &parts[at..at + n * w.rows];
            at += n * w.rows;
            for (t, out_t) in out.chunks_mut(w.rows).enumerate() {
                rows_out.push((block, chunk, t, out_t));
            }
        }
        rows_out
            .into_par_iter()
            .for_each(|(block, chunk, t, out_t)| unblock_row(block, n, chunk, t, out_t));
    });
    if parts.len() <= PARTS_KEEP {
        PARTS.set(parts);
    }
}

/// The job of weight rows `r0..r0 + m` of `w` against every activation row of `acts`,
/// writing one (activation row, weight row) block: output `(t, r)` at `t * m + r - r0`.
fn block_job<'a>(w: QMatrix<'a>, acts: &'a QActs, r0: usize, m: usize, tile: usize) -> Job<'a> {
    let rb = w.row_bytes();
    Job {
        w: &w.data[r0 * rb..(r0 + m) * rb],
        row_bytes: rb,
        acts,
        t0: 0,
        t1: acts.n,
        stride: m,
        tile,
    }
}

/// Output row `t` of a product written as [`block_job`] blocks of `chunk` weight rows
/// each (`n` activation rows), copied into `out_t`.
fn unblock_row(blocks: &[f32], n: usize, chunk: usize, t: usize, out_t: &mut [f32]) {
    for (c, o) in blocks.chunks(n * chunk).enumerate() {
        let (r0, m) = (c * chunk, o.len() / n);
        out_t[r0..r0 + m].copy_from_slice(&o[t * m..(t + 1) * m]);
    }
}

/// Largest [`PARTS`] buffer kept between calls (16 MiB); larger ones are freed.
const PARTS_KEEP: usize = 4 << 20;

thread_local! {
    /// Per-task output blocks of [`matmul_with`], reused between calls.
    static PARTS: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Single-threaded [`matmul`], with identical results.
///
/// # Panics
///
/// As [`matmul`].
pub fn matmul_serial(w: QMatrix<'_>, acts: &QActs, out: &mut [f32]) {
    matmul_serial_with(Path::detect(), w, acts, out);
}

pub(crate) fn matmul_serial_with(path: Path, w: QMatrix<'_>, acts: &QActs, out: &mut [f32]) {
    check(&w, acts, out);
    if w.rows == 0 || acts.n == 0 {
        return;
    }
    let job = Job {
        w: w.data,
        row_bytes: w.row_bytes(),
        acts,
        t0: 0,
        t1: acts.n,
        stride: w.rows,
        tile: tile_rows(acts),
    };
    path.kernel(w.dtype, w.packed)(&job, out);
}

/// Slow `f32` reference: dequantises each row of `w` and takes a plain sequential `f32`
/// dot product with each row of `x` (`x.len() / w.cols` rows); `out` as in [`matmul`].
///
/// # Panics
///
/// If the shapes disagree.
pub fn matmul_reference_f32(w: QMatrix<'_>, x: &[f32], out: &mut [f32]) {
    assert!(!w.packed, "the reference takes the GGUF layout");
    assert_eq!(
        w.data.len(),
        w.rows * w.row_bytes(),
        "wrong weight data length"
    );
    assert!(
        w.cols > 0 && x.len().is_multiple_of(w.cols),
        "x is not a whole number of rows"
    );
    let n = x.len() / w.cols;
    assert_eq!(out.len(), n * w.rows, "output length");
    let mut row = vec![0f32; w.cols];
    for r in 0..w.rows {
        dequantize_row(w.dtype, w.row(r), &mut row);
        for (t, xt) in x.chunks_exact(w.cols).enumerate() {
            let mut sum = 0f32;
            for (a, b) in row.iter().zip(xt) {
                sum += a * b;
            }
            out[t * w.rows + r] = sum;
        }
    }
}
