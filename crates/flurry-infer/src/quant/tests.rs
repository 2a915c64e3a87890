//! Tests for the block formats and kernels.

use std::sync::LazyLock;

use half::f16;
use proptest::prelude::*;

use super::blocks::{f16_to_f32, quantize_block_q8k};
use super::*;

/// Weight types `matmul` accepts.
const WEIGHT_TYPES: [GgmlType; 8] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q6K,
];

/// splitmix64: test data from a proptest-chosen seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn bytes(&mut self, out: &mut [u8]) {
        for b in out {
            *b = self.next() as u8;
        }
    }

    /// Activation-like values: a per-row magnitude, the odd outlier and exact zeros.
    fn values(&mut self, n: usize) -> Vec<f32> {
        let scale = [0.01f32, 1.0, 30.0][self.below(3) as usize];
        (0..n)
            .map(|_| match self.below(50) {
                0 => 0.0,
                1 => self.unit() * scale * 20.0,
                _ => self.unit() * scale,
            })
            .collect()
    }

    /// A small finite f16 scale (sometimes zero, either sign).
    fn scale_bits(&mut self) -> [u8; 2] {
        let v = if self.below(20) == 0 {
            0.0
        } else {
            self.unit() * 0.05
        };
        f16::from_f32(v).to_bits().to_le_bytes()
    }
}

/// Random weight bytes: random quantised blocks (any bit pattern, finite small scales), or
/// for some calls, quantised random values.
fn random_weights(dtype: GgmlType, rows: usize, cols: usize, rng: &mut Rng) -> Vec<u8> {
    let n = rows * cols;
    if matches!(dtype, GgmlType::F32 | GgmlType::F16) || rng.below(3) == 0 {
        return quantize_weights(dtype, &rng.values(n));
    }
    let mut data = vec![0u8; row_bytes(dtype, n)];
    rng.bytes(&mut data);
    for b in data.chunks_exact_mut(dtype.block_bytes()) {
        let offsets: &[usize] = match dtype {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
            GgmlType::Q4_1 | GgmlType::Q8_1 | GgmlType::Q4K => &[0, 2],
            GgmlType::Q6K => &[208],
            _ => unreachable!(),
        };
        for &o in offsets {
            b[o..o + 2].copy_from_slice(&rng.scale_bits());
        }
    }
    data
}

/// Straightforward dequantisation, element by element from the format description.
fn naive_dequant(dtype: GgmlType, b: &[u8]) -> Vec<f32> {
    let h = |o: usize| f16::from_bits(u16::from_le_bytes([b[o], b[o + 1]])).to_f32();
    let nib = |qs: &[u8], j: usize| if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 };
    match dtype {
        GgmlType::Q4_0 => (0..32)
            .map(|j| h(0) * (nib(&b[2..], j) as f32 - 8.0))
            .collect(),
        GgmlType::Q4_1 => (0..32)
            .map(|j| h(0) * nib(&b[4..], j) as f32 + h(2))
            .collect(),
        GgmlType::Q5_0 => {
            let qh = u32::from_le_bytes(b[2..6].try_into().unwrap());
            (0..32)
                .map(|j| {
                    let q = u32::from(nib(&b[6..], j)) + 16 * ((qh >> j) & 1);
                    h(0) * (q as f32 - 16.0)
                })
                .collect()
        }
        GgmlType::Q8_0 => (0..32).map(|j| h(0) * f32::from(b[2 + j] as i8)).collect(),
        GgmlType::Q8_1 => (0..32).map(|j| h(0) * f32::from(b[4 + j] as i8)).collect(),
        GgmlType::Q8K => {
            let d = f32::from_le_bytes(b[..4].try_into().unwrap());
            (0..256).map(|j| d * f32::from(b[4 + j] as i8)).collect()
        }
        GgmlType::Q4K => (0..256)
            .map(|e| {
                // Element e: sub-block e / 32; chunk c = e / 64 packs sub-blocks 2c (low
                // nibbles) and 2c + 1 (high nibbles) in qs[32c..32c + 32].
                let sub = e / 32;
                let byte = b[16 + 32 * (e / 64) + e % 32];
                let q = if sub % 2 == 0 { byte & 15 } else { byte >> 4 };
                let s = &b[4..16];
                let (sc, m) = if sub < 4 {
                    (s[sub] & 63, s[sub + 4] & 63)
                } else {
                    (
                        (s[sub + 4] & 15) | ((s[sub - 4] >> 6) << 4),
                        (s[sub + 4] >> 4) | ((s[sub] >> 6) << 4),
                    )
                };
                h(0) * f32::from(sc) * f32::from(q) - h(2) * f32::from(m)
            })
            .collect(),
        GgmlType::Q6K => (0..256)
            .map(|e| {
                // Element e: half n = e / 128; within it quarter k = (e % 128) / 32 and l.
                let (n, k, l) = (e / 128, (e % 128) / 32, e % 32);
                let ql = b[64 * n + l + 32 * (k % 2)];
                let low = if k < 2 { ql & 15 } else { ql >> 4 };
                let high = (b[128 + 32 * n + l] >> (2 * k)) & 3;
                let q = i32::from(low | (high << 4)) - 32;
                let sc = b[192 + 8 * n + 2 * k + l / 16] as i8;
                h(208) * f32::from(sc) * q as f32
            })
            .collect(),
        GgmlType::F32 | GgmlType::F16 => unreachable!(),
    }
}

fn pool(threads: usize) -> &'static rayon::ThreadPool {
    static POOLS: LazyLock<Vec<rayon::ThreadPool>> = LazyLock::new(|| {
        (1..=3)
            .map(|t| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap()
            })
            .collect()
    });
    &POOLS[threads - 1]
}

/// A random row length for `dtype`: whole blocks, up to 1024 (any length for F32/F16).
fn cols_for(dtype: GgmlType, rng: &mut Rng) -> usize {
    let bl = act_type(dtype)
        .map_or(1, |a| a.block_len())
        .max(dtype.block_len());
    bl * (1 + rng.below((1024 / bl) as u64) as usize)
}

#[test]
fn f16_conversion_matches_half_for_every_bit_pattern() {
    for bits in 0..=u16::MAX {
        let ours = f16_to_f32(bits);
        let theirs = f16::from_bits(bits).to_f32();
        if theirs.is_nan() {
            assert!(ours.is_nan(), "{bits:#06x}");
            // F16C (and half) return quiet NaNs with the payload kept.
            assert_eq!(
                ours.to_bits() | 0x0040_0000,
                ours.to_bits(),
                "{bits:#06x} not quiet"
            );
        } else {
            assert_eq!(ours.to_bits(), theirs.to_bits(), "{bits:#06x}");
        }
    }
}

#[test]
fn act_types_and_row_bytes() {
    assert_eq!(act_type(GgmlType::Q4_0), Some(GgmlType::Q8_0));
    assert_eq!(act_type(GgmlType::Q5_0), Some(GgmlType::Q8_0));
    assert_eq!(act_type(GgmlType::Q8_0), Some(GgmlType::Q8_0));
    assert_eq!(act_type(GgmlType::Q4_1), Some(GgmlType::Q8_1));
    assert_eq!(act_type(GgmlType::Q4K), Some(GgmlType::Q8K));
    assert_eq!(act_type(GgmlType::Q6K), Some(GgmlType::Q8K));
    assert_eq!(act_type(GgmlType::F32), None);
    assert_eq!(act_type(GgmlType::F16), None);
    assert_eq!(row_bytes(GgmlType::Q4_1, 576), 18 * 20);
    assert_eq!(row_bytes(GgmlType::Q6K, 1536), 6 * 210);
    assert_eq!(row_bytes(GgmlType::F16, 7), 14);
}

#[test]
#[should_panic(expected = "whole number")]
fn row_bytes_rejects_partial_blocks() {
    row_bytes(GgmlType::Q4_0, 48);
}

/// Hand-computed blocks: scales chosen so that the quantiser sees exact ties.
#[test]
fn quantisers_known_answers() {
    // Q8_0/Q8_1: amax 127 -> d = 1, multiplier 127 / amax = 1; halves round to even (as
    // llama.cpp's AVX2 quantize_row_q8_0/1).
    let mut x = [0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = 0.49;
    x[4] = -126.5;
    x[5] = 3.5;
    let q = quantize_weights(GgmlType::Q8_1, &x);
    assert_eq!(
        u16::from_le_bytes([q[0], q[1]]),
        f16::from_f32(1.0).to_bits()
    );
    assert_eq!(&q[4..10], &[127u8, 2, (-2i8) as u8, 0, (-126i8) as u8, 4]);
    // s = d * sum(q) = 127 + 2 - 2 + 0 - 126 + 4 = 5.
    assert_eq!(
        u16::from_le_bytes([q[2], q[3]]),
        f16::from_f32(5.0).to_bits()
    );
    let q0 = quantize_weights(GgmlType::Q8_0, &x);
    assert_eq!(&q0[..2], &q[..2]);
    assert_eq!(&q0[2..], &q[4..]);

    // Q8_K: max -127 -> iscale = 1, d = 1; nearest_int rounds halves to even.
    let mut x = [0f32; 256];
    x[0] = -127.0;
    x[1] = 2.5;
    x[2] = 3.5;
    x[3] = -2.5;
    x[17] = 100.0;
    let q = quantize_weights(GgmlType::Q8K, &x);
    assert_eq!(f32::from_le_bytes(q[..4].try_into().unwrap()), 1.0);
    assert_eq!(&q[4..8], &[(-127i8) as u8, 2, 4, (-2i8) as u8]);
    assert_eq!(q[4 + 17], 100);
    let bsum = |g: usize| i16::from_le_bytes([q[260 + 2 * g], q[261 + 2 * g]]);
    assert_eq!((bsum(0), bsum(1), bsum(2)), (-127 + 2 + 4 - 2, 100, 0));
    // All zeros: d = 0 and zero values.
    let z = quantize_weights(GgmlType::Q8K, &[0.0; 256]);
    assert!(z.iter().all(|&b| b == 0));

    // Q4_0: max -8 -> d = 1, q = min(15, trunc(x + 8.5)).
    let mut x = [0f32; 32];
    x[0] = -8.0;
    x[1] = 7.0;
    x[2] = 0.5;
    x[3] = -0.5;
    x[16] = 0.4;
    let q = quantize_weights(GgmlType::Q4_0, &x);
    assert_eq!(
        u16::from_le_bytes([q[0], q[1]]),
        f16::from_f32(1.0).to_bits()
    );
    assert_eq!(&q[2..6], &[8 << 4, 8 << 4 | 15, 8 << 4 | 9, 8 << 4 | 8]);

    // Q4_1: min 0, max 15 -> d = 1, m = 0, q = trunc(x + 0.5).
    let mut x = [0f32; 32];
    x[0] = 15.0;
    x[1] = 2.5;
    x[2] = 2.4;
    let q = quantize_weights(GgmlType::Q4_1, &x);
    assert_eq!(&q[..4], &[0x00, 0x3c, 0, 0]);
    assert_eq!(&q[4..7], &[15, 3, 2]);

    // Q5_0: max -16 -> d = 1, q = min(31, trunc(x + 16.5)), fifth bits in qh.
    let mut x = [0f32; 32];
    x[0] = -16.0;
    x[1] = 15.0;
    x[17] = 1.0;
    let q = quantize_weights(GgmlType::Q5_0, &x);
    let qh = u32::from_le_bytes(q[2..6].try_into().unwrap());
    // Element 0 -> 0, element 1 -> 31, 17 -> 17, the rest -> 16: bit 4 set except at 0.
    assert_eq!(qh, !1);
    assert_eq!(q[6], 0);
    assert_eq!(q[7], 0x1F);
    assert_eq!(q[8], 0);
}

/// The activation buffers hold exactly what the byte-layout quantisers produce.
#[test]
fn qacts_match_byte_quantisers() {
    let mut rng = Rng(7);
    let x = rng.values(3 * 512);
    let mut acts = QActs::default();
    for (weight, act) in [
        (GgmlType::Q8_0, GgmlType::Q8_0),
        (GgmlType::Q4_1, GgmlType::Q8_1),
        (GgmlType::Q6K, GgmlType::Q8K),
    ] {
        acts.quantize(weight, &x, 512);
        assert_eq!(acts.n(), 3);
        assert_eq!(acts.act_type(), Some(act));
        let bytes = quantize_weights(act, &x);
        let mut from_bytes = vec![0f32; x.len()];
        dequantize_row(act, &bytes, &mut from_bytes);
        let bl = act.block_len();
        for t in 0..3 {
            let a = acts.row(t);
            for (i, &q) in a.qs.iter().enumerate() {
                let v = a.d[i / bl] * f32::from(q);
                assert_eq!(
                    v.to_bits(),
                    from_bytes[t * 512 + i].to_bits(),
                    "{act} row {t} [{i}]"
                );
            }
            if act == GgmlType::Q8_1 {
                for (b, &s) in a.s.iter().enumerate() {
                    let off = (t * 16 + b) * 36;
                    assert_eq!(
                        s,
                        f16_to_f32(u16::from_le_bytes([bytes[off + 2], bytes[off + 3]]))
                    );
                }
            }
            if act == GgmlType::Q8K {
                for (g, &s) in a.bsums.iter().enumerate() {
                    let sum: i16 = a.qs[16 * g..16 * g + 16]
                        .iter()
                        .map(|&q| i16::from(q))
                        .sum();
                    assert_eq!(s, sum);
                }
            }
        }
    }
}

#[test]
fn q8k_all_zero_block_has_zero_sums() {
    let mut q = [1i8; 256];
    let mut bs = [1i16; 16];
    assert_eq!(quantize_block_q8k(&[0.0; 256], &mut q, &mut bs), 0.0);
    assert!(q.iter().all(|&v| v == 0) && bs.iter().all(|&v| v == 0));
}

/// Extreme block contents (-128 weights, full scales, ±127 activations) where an
/// intermediate i16 could overflow if the SIMD code were wrong.
#[test]
fn extreme_blocks_match_reference() {
    let cols = 512;
    let x: Vec<f32> = (0..cols)
        .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 })
        .collect();
    for dtype in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::Q4K,
        GgmlType::Q6K,
    ] {
        for fill in [0x00u8, 0x80, 0xFF, 0x7F] {
            let mut data = vec![fill; row_bytes(dtype, cols)];
            for b in data.chunks_exact_mut(dtype.block_bytes()) {
                let one = f16::from_f32(0.5).to_bits().to_le_bytes();
                match dtype {
                    GgmlType::Q6K => b[208..210].copy_from_slice(&one),
                    GgmlType::Q4_1 | GgmlType::Q4K => {
                        b[0..2].copy_from_slice(&one);
                        b[2..4].copy_from_slice(&one);
                    }
                    _ => b[0..2].copy_from_slice(&one),
                }
            }
            let w = QMatrix {
                dtype,
                rows: 1,
                cols,
                data: &data,
                packed: false,
            };
            let mut acts = QActs::default();
            acts.quantize(dtype, &x, cols);
            let mut got = [0f32];
            let mut want = [0f32];
            matmul_serial(w, &acts, &mut got);
            // Activations are exactly ±1 after quantisation (amax 1 in every block), so
            // the reference on the same values is exact up to float rounding.
            matmul_reference_f32(w, &x, &mut want);
            let mut scalar = [0f32];
            matmul_serial_with(Path::Scalar, w, &acts, &mut scalar);
            assert_eq!(
                got[0].to_bits(),
                scalar[0].to_bits(),
                "{dtype} fill {fill:#x}"
            );
            // The same extremes through every path's GEMM kernels (several rows, some
            // negated so that both signs meet the -128 weights).
            let rows6: Vec<f32> = (0..6)
                .flat_map(|t| x.iter().map(move |&v| if t % 2 == 0 { v } else { -v }))
                .collect();
            let mut acts6 = QActs::default();
            acts6.quantize(dtype, &rows6, cols);
            let mut want6 = [0f32; 6];
            matmul_serial_with(Path::Scalar, w, &acts6, &mut want6);
            for path in Path::all_available() {
                for threads in 1..=3 {
                    let mut got6 = [f32::NAN; 6];
                    matmul_with(path, w, &acts6, &mut got6, pool(threads), 0);
                    assert_eq!(
                        got6.map(f32::to_bits),
                        want6.map(f32::to_bits),
                        "{dtype} fill {fill:#x} {path:?} {threads} threads"
                    );
                }
            }
            let tol = 1e-3 * want[0].abs().max(1.0);
            assert!(
                (got[0] - want[0]).abs() <= tol,
                "{dtype} fill {fill:#x}: {} vs {}",
                got[0],
                want[0]
            );
        }
    }
}

#[test]
#[should_panic(expected = "quantised for another weight type")]
fn matmul_rejects_mismatched_activations() {
    let data = quantize_weights(GgmlType::Q4_1, &[0.5; 64]);
    let w = QMatrix {
        dtype: GgmlType::Q4_1,
        rows: 2,
        cols: 32,
        data: &data,
        packed: false,
    };
    let mut acts = QActs::default();
    acts.quantize(GgmlType::Q8_0, &[1.0; 32], 32);
    matmul_serial(w, &acts, &mut [0.0; 2]);
}

#[test]
fn kernel_path_is_named() {
    // The name is the path this CPU actually runs.
    #[cfg(target_arch = "x86_64")]
    let want = if super::x86::vnni_available() {
        "avx512vnni"
    } else if super::x86::available() {
        "avx2"
    } else {
        "scalar"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let want = "scalar";
    assert_eq!(kernel_path(), want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dequantize_matches_naive(seed in any::<u64>(), blocks in 1usize..6, ti in 0usize..10) {
        let dtype = [
            GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q8_1,
            GgmlType::Q8K, GgmlType::Q4K, GgmlType::Q6K, GgmlType::Q4_0, GgmlType::Q6K,
        ][ti];
        let mut rng = Rng(seed);
        let n = blocks * dtype.block_len();
        let mut data = vec![0u8; row_bytes(dtype, n)];
        rng.bytes(&mut data);
        for b in data.chunks_exact_mut(dtype.block_bytes()) {
            match dtype {
                GgmlType::Q8K => b[..4].copy_from_slice(&(rng.unit() * 0.01).to_le_bytes()),
                GgmlType::Q6K => b[208..210].copy_from_slice(&rng.scale_bits()),
                GgmlType::Q4_1 | GgmlType::Q8_1 | GgmlType::Q4K => {
                    b[..2].copy_from_slice(&rng.scale_bits());
                    b[2..4].copy_from_slice(&rng.scale_bits());
                }
                _ => b[..2].copy_from_slice(&rng.scale_bits()),
            }
        }
        let mut out = vec![f32::NAN; n];
        dequantize_row(dtype, &data, &mut out);
        let want: Vec<f32> = data.chunks_exact(dtype.block_bytes()).flat_map(|b| naive_dequant(dtype, b)).collect();
        for (i, (a, b)) in out.iter().zip(&want).enumerate() {
            prop_assert_eq!(a.to_bits(), b.to_bits(), "{} element {}", dtype, i);
        }
    }

    #[test]
    fn pack_unpack_roundtrip(seed in any::<u64>(), ti in 0usize..4, blocks in 1usize..30) {
        let dtype = [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0][ti];
        let mut rng = Rng(seed);
        let row = random_weights(dtype, 1, blocks * 32, &mut rng);
        let mut packed = vec![0u8; row.len()];
        pack_row(dtype, &row, &mut packed);
        let mut back = vec![0u8; row.len()];
        unpack_row(dtype, &packed, &mut back);
        prop_assert_eq!(&back, &row);
        // Every byte moved somewhere: the packed row is a permutation at the bit level
        // (same number of set bits), not a copy with zeros.
        let ones = |v: &[u8]| v.iter().map(|b| b.count_ones()).sum::<u32>();
        prop_assert_eq!(ones(&packed), ones(&row));
    }

    #[test]
    fn float_rows_roundtrip(seed in any::<u64>(), n in 1usize..300) {
        let x = Rng(seed).values(n);
        let mut back = vec![0f32; n];
        dequantize_row(GgmlType::F32, &quantize_weights(GgmlType::F32, &x), &mut back);
        prop_assert_eq!(&back, &x);
        dequantize_row(GgmlType::F16, &quantize_weights(GgmlType::F16, &x), &mut back);
        for (a, b) in back.iter().zip(&x) {
            prop_assert_eq!(*a, f16::from_f32(*b).to_f32());
        }
    }

    #[test]
    fn quantize_roundtrip_error_bounds(seed in any::<u64>(), blocks in 1usize..5, ti in 0usize..8) {
        let dtype = [
            GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8K, GgmlType::Q4_0, GgmlType::Q4_1,
            GgmlType::Q5_0, GgmlType::Q4K, GgmlType::Q6K,
        ][ti];
        let mut rng = Rng(seed);
        let n = blocks * dtype.block_len();
        let x = rng.values(n);
        let q = quantize_weights(dtype, &x);
        let mut y = vec![0f32; n];
        dequantize_row(dtype, &q, &mut y);
        let bl = dtype.block_len();
        for (xb, yb) in x.chunks_exact(bl).zip(y.chunks_exact(bl)) {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let (lo, hi) = xb.iter().fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
            // Bound on |x - y|: half a step (a whole one where the range is asymmetric),
            // plus the f16 rounding of the scales (relative for normal numbers, absolute
            // for subnormal ones, times the largest integer factor).
            let f16_abs = 2f32.powi(-24);
            let bound = match dtype {
                GgmlType::Q8_0 | GgmlType::Q8_1 => amax / 127.0 * 0.5 + amax * 2f32.powi(-10) + 128.0 * f16_abs,
                GgmlType::Q8K => amax / 127.0 * 0.5 * 1.0001,
                GgmlType::Q4_0 => amax / 8.0 * (1.0 + 2f32.powi(-7)) + 8.0 * f16_abs,
                GgmlType::Q5_0 => amax / 16.0 * (1.0 + 2f32.powi(-7)) + 16.0 * f16_abs,
                GgmlType::Q4_1 => {
                    let (mn, mx) = xb.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                    (mx - mn) / 15.0 * 0.5 + (mx.abs() + mn.abs()) * 2f32.powi(-10) + 16.0 * f16_abs
                }
                // 8 sub-blocks share 6-bit scales and mins: within a step of the largest
                // range in the super-block.
                GgmlType::Q4K => (hi - lo) / 15.0 * 1.6 + amax * 2f32.powi(-8) + 2048.0 * f16_abs,
                GgmlType::Q6K => amax / 31.0 * 1.2 + 8192.0 * f16_abs,
                _ => unreachable!(),
            };
            for (a, b) in xb.iter().zip(yb) {
                prop_assert!((a - b).abs() <= bound * 1.0001 + 1e-30, "{}: {} -> {}, bound {}", dtype, a, b, bound);
            }
        }
    }

    #[test]
    fn matmul_close_to_f32_reference(seed in any::<u64>(), ti in 0usize..8, rows in 1usize..40, n in 1usize..5) {
        let dtype = WEIGHT_TYPES[ti];
        let mut rng = Rng(seed);
        let cols = cols_for(dtype, &mut rng);
        let data = random_weights(dtype, rows, cols, &mut rng);
        let w = QMatrix { dtype, rows, cols, data: &data, packed: false };
        let x = rng.values(n * cols);
        let mut acts = QActs::default();
        acts.quantize(dtype, &x, cols);
        let mut got = vec![0f32; n * rows];
        let mut want = vec![0f32; n * rows];
        matmul(w, &acts, &mut got, pool(2));
        matmul_reference_f32(w, &x, &mut want);
        let ab = act_type(dtype).map_or(1, |a| a.block_len());
        let mut wrow = vec![0f32; cols];
        for r in 0..rows {
            dequantize_row(dtype, w.row(r), &mut wrow);
            for t in 0..n {
                let xt = &x[t * cols..(t + 1) * cols];
                let (g, e) = (got[t * rows + r], want[t * rows + r]);
                if act_type(dtype).is_none() {
                    // Same sequential f32 sum: exact.
                    prop_assert_eq!(g.to_bits(), e.to_bits());
                    continue;
                }
                // Activation quantisation error: half a step (amax / 127 / 2) per element,
                // plus f16 rounding of the Q8_0/Q8_1 scales; then float rounding.
                let mut tol = 0f32;
                let mut mag = 0f32;
                for (wb, xb) in wrow.chunks_exact(ab).zip(xt.chunks_exact(ab)) {
                    let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let wsum: f32 = wb.iter().map(|v| v.abs()).sum();
                    tol += wsum * amax * (0.5 / 127.0 + 2f32.powi(-10));
                    mag += wb.iter().zip(xb).map(|(a, b)| (a * b).abs()).sum::<f32>();
                }
                if dtype == GgmlType::Q4_1 {
                    // The f16-rounded block sums s multiply the weight minimum.
                    for (b, xb) in w.row(r).chunks_exact(20).zip(xt.chunks_exact(32)) {
                        let m = f16_to_f32(u16::from_le_bytes([b[2], b[3]])).abs();
                        tol += m * xb.iter().map(|v| v.abs()).sum::<f32>() * 2f32.powi(-10);
                    }
                }
                let tol = tol * 1.01 + mag * 1e-4 + 1e-30;
                prop_assert!((g - e).abs() <= tol, "{} {}x{} n={} [{},{}]: {} vs {} (tol {})", dtype, rows, cols, n, t, r, g, e, tol);
            }
        }
    }

    #[test]
    fn matmul_threads_and_paths_bit_identical(
        seed in any::<u64>(), ti in 0usize..8, rows in 1usize..200, n in 1usize..9,
    ) {
        let dtype = WEIGHT_TYPES[ti];
        let mut rng = Rng(seed);
        let cols = cols_for(dtype, &mut rng).min(512);
        let data = random_weights(dtype, rows, cols, &mut rng);
        let w = QMatrix { dtype, rows, cols, data: &data, packed: false };
        let x = rng.values(n * cols);
        let mut acts = QActs::default();
        acts.quantize(dtype, &x, cols);
        let mut serial = vec![0f32; n * rows];
        matmul_serial(w, &acts, &mut serial);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        // The portable path must agree with whatever `matmul_serial` picked (AVX2 here).
        let mut scalar = vec![0f32; n * rows];
        matmul_serial_with(Path::Scalar, w, &acts, &mut scalar);
        prop_assert_eq!(bits(&scalar), bits(&serial), "scalar vs {}", kernel_path());
        // The same weights in the packed layout give the same bits on every path.
        let pk = packable(dtype).then(|| pack_matrix(w));
        let variants = std::iter::once(w)
            .chain(pk.as_deref().map(|data| QMatrix { data, packed: true, ..w }));
        for w in variants {
            for threads in 1..=3 {
                for path in Path::all_available() {
                    let mut par = vec![f32::NAN; n * rows];
                    // min_work 0: always take the threaded code, even for tiny matrices.
                    matmul_with(path, w, &acts, &mut par, pool(threads), 0);
                    prop_assert_eq!(bits(&par), bits(&serial), "{} threads, {:?}, packed {}", threads, path, w.packed);
                }
            }
            let mut public = vec![0f32; n * rows];
            matmul(w, &acts, &mut public, pool(2));
            prop_assert_eq!(bits(&public), bits(&serial), "packed {}", w.packed);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A token's results never depend on the other activation rows of the batch: `matmul`
    /// over `n` rows equals, row by row and bit for bit, `matmul` over each row alone, for
    /// every path, thread count and cache tile size (this exercises the GEMM kernels'
    /// groups of activation rows and their remainders against the one-row kernels).
    #[test]
    fn batched_rows_equal_single_rows(
        seed in any::<u64>(), ti in 0usize..8, rows in 1usize..40, n in 2usize..24,
    ) {
        let dtype = WEIGHT_TYPES[ti];
        let mut rng = Rng(seed);
        let cols = cols_for(dtype, &mut rng).min(768);
        let data = random_weights(dtype, rows, cols, &mut rng);
        let w = QMatrix { dtype, rows, cols, data: &data, packed: false };
        let x = rng.values(n * cols);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        // Each activation row alone (n = 1), on the portable path and the detected one.
        let mut single = Vec::new();
        let mut one = QActs::default();
        for xt in x.chunks_exact(cols) {
            one.quantize(dtype, xt, cols);
            let mut o = vec![0f32; rows];
            matmul(w, &one, &mut o, pool(2));
            let mut s = vec![0f32; rows];
            matmul_serial_with(Path::Scalar, w, &one, &mut s);
            prop_assert_eq!(bits(&o), bits(&s), "one row: {} vs scalar", kernel_path());
            single.extend(o);
        }
        let mut acts = QActs::default();
        acts.quantize(dtype, &x, cols);
        let pk = packable(dtype).then(|| pack_matrix(w));
        let variants = std::iter::once(w)
            .chain(pk.as_deref().map(|data| QMatrix { data, packed: true, ..w }));
        for w in variants {
        for path in Path::all_available() {
            for threads in 1..=3 {
                let mut par = vec![f32::NAN; n * rows];
                matmul_with(path, w, &acts, &mut par, pool(threads), 0);
                prop_assert_eq!(bits(&par), bits(&single), "{:?}, {} threads, packed {}", path, threads, w.packed);
            }
            // Any cache tile size, on the kernel directly.
            for tile in [1, 2, 3, 5, 7] {
                let mut out = vec![f32::NAN; n * rows];
                let job = Job {
                    w: w.data,
                    row_bytes: w.row_bytes(),
                    acts: &acts,
                    t0: 0,
                    t1: n,
                    stride: rows,
                    tile,
                };
                path.kernel(dtype, w.packed)(&job, &mut out);
                prop_assert_eq!(bits(&out), bits(&single), "{:?}, tile {}, packed {}", path, tile, w.packed);
            }
        }
        }
        let mut public = vec![0f32; n * rows];
        matmul(w, &acts, &mut public, pool(2));
        prop_assert_eq!(bits(&public), bits(&single));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// With enough activation rows, `matmul` splits them (not the weight rows) between the
    /// threads; every split gives the single-threaded bits, on every path and layout.
    #[test]
    fn activation_row_split_matches_serial(
        seed in any::<u64>(), ti in 0usize..8, rows in 1usize..24, extra in 0usize..60,
    ) {
        let dtype = WEIGHT_TYPES[ti];
        let mut rng = Rng(seed);
        let cols = cols_for(dtype, &mut rng).min(512);
        let n = 2 * SPLIT_ACT_ROWS + extra;
        let data = random_weights(dtype, rows, cols, &mut rng);
        let w = QMatrix { dtype, rows, cols, data: &data, packed: false };
        let x = rng.values(n * cols);
        let mut acts = QActs::default();
        acts.quantize(dtype, &x, cols);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let mut serial = vec![0f32; n * rows];
        matmul_serial_with(Path::Scalar, w, &acts, &mut serial);
        let pk = packable(dtype).then(|| pack_matrix(w));
        let variants = std::iter::once(w)
            .chain(pk.as_deref().map(|data| QMatrix { data, packed: true, ..w }));
        for w in variants {
            for path in Path::all_available() {
                for threads in 2..=3 {
                    let mut par = vec![f32::NAN; n * rows];
                    matmul_with(path, w, &acts, &mut par, pool(threads), 0);
                    prop_assert_eq!(bits(&par), bits(&serial), "{:?}, {} threads, n {}, packed {}", path, threads, n, w.packed);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Several matrices against the same activation rows as one parallel step give each
    /// matrix's single-threaded bits, on every path and layout, with one activation row
    /// (the joint split) and with two (one product after another).
    #[test]
    fn many_matrices_match_serial(
        seed in any::<u64>(), ti in 0usize..8, rows in prop::collection::vec(0usize..90, 1..4),
        n in 1usize..3,
    ) {
        let dtype = WEIGHT_TYPES[ti];
        let mut rng = Rng(seed);
        let cols = cols_for(dtype, &mut rng).min(512);
        let data: Vec<Vec<u8>> =
            rows.iter().map(|&r| random_weights(dtype, r, cols, &mut rng)).collect();
        let ws: Vec<QMatrix<'_>> = rows
            .iter()
            .zip(&data)
            .map(|(&rows, data)| QMatrix { dtype, rows, cols, data, packed: false })
            .collect();
        let x = rng.values(n * cols);
        let mut acts = QActs::default();
        acts.quantize(dtype, &x, cols);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let serial: Vec<Vec<u32>> = ws
            .iter()
            .map(|&w| {
                let mut out = vec![0f32; n * w.rows];
                matmul_serial_with(Path::Scalar, w, &acts, &mut out);
                bits(&out)
            })
            .collect();
        let packed: Vec<Vec<u8>> = if packable(dtype) {
            ws.iter().map(|&w| pack_matrix(w)).collect()
        } else {
            Vec::new()
        };
        let mut variants = vec![ws.clone()];
        if !packed.is_empty() {
            variants.push(
                ws.iter()
                    .zip(&packed)
                    .map(|(&w, data)| QMatrix { data, packed: true, ..w })
                    .collect(),
            );
        }
        for ws in &variants {
            for path in Path::all_available() {
                for threads in 2..=3 {
                    let mut outs: Vec<Vec<f32>> =
                        ws.iter().map(|w| vec![f32::NAN; n * w.rows]).collect();
                    let mut jobs: Vec<(QMatrix<'_>, &mut [f32])> =
                        ws.iter().copied().zip(outs.iter_mut().map(|o| &mut o[..])).collect();
                    matmul_many_with(path, &mut jobs, &acts, pool(threads), 0);
                    for (k, out) in outs.iter().enumerate() {
                        prop_assert_eq!(&bits(out), &serial[k], "{:?}, {} threads, matrix {}, n {}, packed {}", path, threads, k, n, ws[k].packed);
                    }
                }
            }
        }
    }

    /// A lockstep team's step of products (a decode step of 1-3 sequences) gives each
    /// matrix's single-threaded bits, on every path and layout, however the rows are
    /// claimed; each thread quantises the rows into its own `QActs`, as the decode step
    /// does.
    #[test]
    fn team_products_match_serial(
        seed in any::<u64>(), ti in 0usize..8, rows in prop::collection::vec(0usize..300, 1..4),
        n in 1usize..4,
    ) {
        let dtype = WEIGHT_TYPES[ti];
        let mut rng = Rng(seed);
        let cols = cols_for(dtype, &mut rng).min(512);
        let data: Vec<Vec<u8>> =
            rows.iter().map(|&r| random_weights(dtype, r, cols, &mut rng)).collect();
        let ws: Vec<QMatrix<'_>> = rows
            .iter()
            .zip(&data)
            .map(|(&rows, data)| QMatrix { dtype, rows, cols, data, packed: false })
            .collect();
        let x = rng.values(n * cols);
        let mut acts = QActs::default();
        acts.quantize(dtype, &x, cols);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let serial: Vec<Vec<u32>> = ws
            .iter()
            .map(|&w| {
                let mut out = vec![0f32; n * w.rows];
                matmul_serial_with(Path::Scalar, w, &acts, &mut out);
                bits(&out)
            })
            .collect();
        let packed: Vec<Vec<u8>> = if packable(dtype) {
            ws.iter().map(|&w| pack_matrix(w)).collect()
        } else {
            Vec::new()
        };
        let mut variants = vec![ws.clone()];
        if !packed.is_empty() {
            variants.push(
                ws.iter()
                    .zip(&packed)
                    .map(|(&w, data)| QMatrix { data, packed: true, ..w })
                    .collect(),
            );
        }
        for ws in &variants {
            for path in Path::all_available() {
                for threads in 2..=3 {
                    let mut outs: Vec<Vec<f32>> =
                        ws.iter().map(|w| vec![f32::NAN; n * w.rows]).collect();
                    let shared: Vec<Shared<'_, f32>> =
                        outs.iter_mut().map(|o| Shared::new(o)).collect();
                    let jobs: Vec<(QMatrix<'_>, &Shared<'_, f32>)> =
                        ws.iter().copied().zip(&shared).collect();
                    let team = Team::new(threads);
                    pool(threads).broadcast(|ctx| {
                        let mut own = QActs::default();
                        own.quantize_serial(dtype, &x, cols);
                        team_products_with(path, &team, ctx.index(), &jobs, &own);
                    });
                    drop(jobs);
                    drop(shared);
                    for (k, out) in outs.iter().enumerate() {
                        prop_assert_eq!(&bits(out), &serial[k], "{:?}, {} threads, matrix {}, packed {}, n {}", path, threads, k, ws[k].packed, n);
                    }
                }
            }
        }
    }
}

/// The packed kernels share one prepared copy of the activation rows between tasks and
/// calls: after the rows are quantised again, or read for a weight type with another
/// layout, every result still equals a fresh `QActs`'s, bit for bit.
#[test]
fn prepared_activations_follow_the_rows() {
    let mut rng = Rng(7);
    let (rows, cols) = (40, 576);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    // Q8_0 last and Q4_0 first: the same layout, so stale rows would be reused.
    let types = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q8_0,
    ];
    let weights: Vec<Vec<u8>> = types
        .iter()
        .map(|&t| {
            pack_matrix(QMatrix {
                dtype: t,
                rows,
                cols,
                data: &random_weights(t, rows, cols, &mut rng),
                packed: false,
            })
        })
        .collect();
    let mut reused = QActs::default();
    for n in [8, 8, 3, 20, 20] {
        let x = rng.values(n * cols);
        let mut first = true;
        for (&dtype, data) in types.iter().zip(&weights) {
            let w = QMatrix {
                dtype,
                rows,
                cols,
                data,
                packed: true,
            };
            let mut fresh = QActs::default();
            fresh.quantize(dtype, &x, cols);
            let mut want = vec![0f32; n * rows];
            matmul_serial_with(Path::Scalar, w, &fresh, &mut want);
            // New rows (same shape as the last ones in the second round of 8 and of 20),
            // then quantised again only when the activation type changes (Q4_1's differs).
            if first || reused.act_type() != act_type(dtype) {
                reused.quantize(dtype, &x, cols);
                first = false;
            }
            for threads in 1..=3 {
                let mut got = vec![f32::NAN; n * rows];
                matmul_with(Path::detect(), w, &reused, &mut got, pool(threads), 0);
                assert_eq!(bits(&got), bits(&want), "{dtype}, n {n}, {threads} threads");
            }
        }
    }
}

#[test]
fn round_small_matches_round_ties_even() {
    use super::blocks::round_small;
    let check = |x: f32| {
        let (a, b) = (round_small(x), x.round_ties_even());
        assert!(
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            "{x}: {a} vs {b}"
        );
    };
    for x in [
        0.0f32, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, 126.5, -126.5, 127.49999, 4194303.5,
    ] {
        check(x);
    }
    for x in [
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
        1e-45,
    ] {
        check(x);
        check(-x);
    }
    // Every f32 of magnitude up to 256, by bit pattern (a stride keeps it quick).
    let top = 256f32.to_bits();
    for bits in (0..=top).step_by(7) {
        check(f32::from_bits(bits));
        check(-f32::from_bits(bits));
    }
}

/// Long rows: several groups of 8 blocks (and of 8 super-blocks for the K-quants), with
/// and without a partial last group, for every path and several activation rows.
#[test]
fn long_rows_bit_identical_across_paths() {
    let mut rng = Rng(7);
    for &dtype in WEIGHT_TYPES.iter() {
        let bl = act_type(dtype)
            .map_or(1, |a| a.block_len())
            .max(dtype.block_len());
        for blocks in [8, 9, 16, 17, 24] {
            let cols = bl * blocks;
            let rows = 7;
            let data = random_weights(dtype, rows, cols, &mut rng);
            let w = QMatrix {
                dtype,
                rows,
                cols,
                data: &data,
                packed: false,
            };
            for n in [1, 3, 6, 17] {
                let x = rng.values(n * cols);
                let mut acts = QActs::default();
                acts.quantize(dtype, &x, cols);
                let mut scalar = vec![0f32; n * rows];
                matmul_serial_with(Path::Scalar, w, &acts, &mut scalar);
                assert!(scalar.iter().all(|v| v.is_finite()), "{dtype}");
                let pk = packable(dtype).then(|| pack_matrix(w));
                let variants = std::iter::once(w).chain(pk.as_deref().map(|data| QMatrix {
                    data,
                    packed: true,
                    ..w
                }));
                for w in variants {
                    for path in Path::all_available() {
                        let mut out = vec![f32::NAN; n * rows];
                        matmul_with(path, w, &acts, &mut out, pool(2), 0);
                        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                        assert_eq!(
                            bits(&out),
                            bits(&scalar),
                            "{dtype} {blocks} blocks, n {n}, {path:?}, packed {}",
                            w.packed
                        );
                    }
                }
            }
        }
    }
}

/// Half-precision copies of `xs` (attention keys and values).
fn halves(xs: &[f32]) -> Vec<f16> {
    xs.iter().map(|&x| f16::from_f32(x)).collect()
}

proptest! {
    /// The attention dot (f32 query, half-precision key) is the canonical 8-lane sum of the
    /// exactly converted key, for every length (whole 8-lane chunks and tails).
    #[test]
    fn dot_f16_is_the_canonical_sum(seed in any::<u64>(), len in 0usize..300) {
        let mut rng = Rng(seed);
        let a = rng.values(len);
        let b = halves(&rng.values(len));
        let mut lanes = [0f32; 8];
        let full = len / 8 * 8;
        for i in 0..full {
            lanes[i % 8] += a[i] * b[i].to_f32();
        }
        let mut sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
            + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
        for i in full..len {
            sum += a[i] * b[i].to_f32();
        }
        prop_assert_eq!(dot_f16(&a, &b).to_bits(), sum.to_bits());
    }

    /// The AVX2 attention scores (four keys at a time, then one by one) equal the
    /// portable ones bit for bit, for any head size, cache row width, head offset and
    /// range of keys, including none.
    #[test]
    fn attn_scores_avx2_matches_portable(
        seed in any::<u64>(), hd in 1usize..300, extra in 0usize..20, off in 0usize..20,
        n in 0usize..40, lo in 0usize..10,
    ) {
        let mut rng = Rng(seed);
        let off = off.min(extra);
        let stride = hd + extra;
        let q = rng.values(hd);
        let kc = halves(&rng.values(n * stride));
        let keys = lo.min(n)..n;
        let scale = rng.values(1)[0];
        let mut want = vec![1.5];
        attn_scores(&q, &kc, stride, off, keys.clone(), scale, &mut want);
        prop_assert_eq!(want.len(), 1 + keys.len());
        for (j, w) in keys.clone().zip(&want[1..]) {
            let d = dot_f16(&q, &kc[j * stride + off..j * stride + off + hd]) * scale;
            prop_assert_eq!(d.to_bits(), w.to_bits());
        }
        #[cfg(target_arch = "x86_64")]
        if x86::available() {
            let mut got = vec![1.5];
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2, FMA and F16C (`x86::available`).
            unsafe { x86::attn_scores(&q, &kc, stride, off, keys, scale, &mut got) };
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got), bits(&want));
        }
    }
}

proptest! {
    /// The softmax numerators: the AVX2 path gives the portable bits (values, and the sum
    /// added in order), for any length and spread of scores, and each value is `e^x`
    /// within 2 units in the last place (0 below -87, where probabilities would round to
    /// 0 in half precision anyway).
    #[test]
    fn exp_shifted_avx2_matches_portable_and_exp(
        seed in any::<u64>(), len in 0usize..100, spread in prop::sample::select(vec![1.0f32, 30.0, 200.0]),
    ) {
        let mut rng = Rng(seed);
        let xs: Vec<f32> = (0..len).map(|_| rng.unit() * spread).collect();
        let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut want = xs.clone();
        let sum = exp_shifted(&mut want, max);
        let mut seq = 0.0f64;
        for (x, w) in xs.iter().zip(&want) {
            let d = f64::from(*x - max);
            seq += f64::from(*w);
            if d < -87.0 {
                prop_assert_eq!(*w, 0.0);
            } else {
                let e = d.exp();
                prop_assert!((f64::from(*w) - e).abs() <= 2.0 * e * f64::from(f32::EPSILON), "{d}: {w} vs {e}");
            }
        }
        prop_assert_eq!(sum.to_bits(), seq.to_bits());
        #[cfg(target_arch = "x86_64")]
        if x86::available() {
            let mut got = xs.clone();
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2, FMA and F16C (`x86::available`).
            let s2 = unsafe { x86::exp_shifted(&mut got, max) };
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got), bits(&want));
            prop_assert_eq!(s2.to_bits(), sum.to_bits());
        }
    }
}

#[test]
fn exp_nonpos_edges() {
    use super::portable::exp_nonpos;
    assert_eq!(exp_nonpos(0.0), 1.0);
    assert_eq!(exp_nonpos(-0.0), 1.0);
    assert_eq!(exp_nonpos(-87.5), 0.0);
    assert_eq!(exp_nonpos(f32::NEG_INFINITY), 0.0);
    assert_eq!(exp_nonpos(f32::NAN), 0.0);
    let e = exp_nonpos(-87.0);
    assert!(e > 0.0 && ((f64::from(e) / (-87f64).exp()) - 1.0).abs() < 1e-6);
    // Every step of 2^-10 over [-87, 0], against f64.
    let mut worst = 0f64;
    for i in 0..=(87 << 10) {
        let x = -(i as f32) / 1024.0;
        let e = (f64::from(x)).exp();
        worst = worst.max((f64::from(exp_nonpos(x)) - e).abs() / e);
    }
    assert!(
        worst <= 2.0 * f64::from(f32::EPSILON),
        "relative error {worst}"
    );
}

#[test]
fn exp_any_edges_and_accuracy() {
    use super::portable::exp_any;
    assert_eq!(exp_any(0.0), 1.0);
    assert_eq!(exp_any(-0.0), 1.0);
    assert_eq!(exp_any(88.5), f32::INFINITY);
    assert_eq!(exp_any(f32::INFINITY), f32::INFINITY);
    assert_eq!(exp_any(-87.5), 0.0);
    assert_eq!(exp_any(f32::NEG_INFINITY), 0.0);
    assert_eq!(exp_any(f32::NAN), 0.0);
    assert!(exp_any(88.0).is_finite());
    // Every step of 2^-8 over [-87, 88], against f64.
    let mut worst = 0f64;
    for i in -(87 << 8)..=(88 << 8) {
        let x = i as f32 / 256.0;
        let e = (f64::from(x)).exp();
        worst = worst.max((f64::from(exp_any(x)) - e).abs() / e);
    }
    assert!(
        worst <= 2.0 * f64::from(f32::EPSILON),
        "relative error {worst}"
    );
}

proptest! {
    /// SwiGLU through Flurry's `exp`: the AVX2 path gives the portable bits (NaN where it
    /// gives NaN), for any length, on values of every size and on specials; finite results
    /// are within a few units in the last place of `silu(g) * u` in `f64`.
    #[test]
    fn swiglu_avx2_matches_portable_and_silu(
        seed in any::<u64>(), len in 0usize..100, spread in prop::sample::select(vec![1.0f32, 10.0, 200.0]),
    ) {
        let mut rng = Rng(seed);
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 88.2, -88.2, 87.3, -87.3];
        let gate: Vec<f32> = (0..len)
            .map(|_| if rng.below(8) == 0 { specials[rng.below(9) as usize] } else { rng.unit() * spread })
            .collect();
        let up = rng.values(len);
        let mut want = gate.clone();
        swiglu(&mut want, &up);
        let mut portable = gate.clone();
        super::portable::swiglu(&mut portable, &up);
        let bits = |v: &[f32]| v.iter().map(|f| if f.is_nan() { u32::MAX } else { f.to_bits() }).collect::<Vec<_>>();
        prop_assert_eq!(bits(&want), bits(&portable));
        for ((&g, &u), &w) in gate.iter().zip(&up).zip(&want) {
            let (g64, u64_) = (f64::from(g), f64::from(u));
            let exact = g64 / (1.0 + (-g64).exp()) * u64_;
            if exact.is_finite() && w.is_finite() {
                // Below g = -88, `e^-g` is taken as infinity and the result as zero:
                // |silu(g)| < 88.8 * e^-88 < 1e-36 there.
                let tol = 8.0 * f64::from(f32::EPSILON) * exact.abs() + 1e-36 * u64_.abs().max(1.0);
                prop_assert!((f64::from(w) - exact).abs() <= tol, "silu({g}) * {u}: {w} vs {exact}");
            } else {
                prop_assert!(g.is_nan() || g.is_infinite(), "silu({g}) * {u} = {w}");
            }
        }
        #[cfg(target_arch = "x86_64")]
        if x86::available() {
            let mut got = gate.clone();
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2, FMA and F16C (`x86::available`).
            unsafe { x86::swiglu(&mut got, &up) };
            prop_assert_eq!(bits(&got), bits(&portable));
        }
    }
}

proptest! {
    /// The weighted sum of half-precision value rows (attention) is each output's sum of
    /// `p[j] * v` in row order, bit for bit, on the portable and AVX2 paths, for any
    /// output width (64-lane blocks, 8-lane blocks, tails), row stride and row count,
    /// including none.
    #[test]
    fn weighted_rows_avx2_matches_portable(
        seed in any::<u64>(), hd in 1usize..300, extra in 0usize..20, n in 0usize..40,
    ) {
        let mut rng = Rng(seed);
        let stride = hd + extra;
        let p = rng.values(n);
        let v = halves(&rng.values(n * stride));
        let mut want = vec![f32::NAN; hd];
        weighted_rows(&p, &v, stride, &mut want);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let mut direct = vec![0f32; hd];
        for (j, &pj) in p.iter().enumerate() {
            for (d, o) in direct.iter_mut().enumerate() {
                *o += pj * v[j * stride + d].to_f32();
            }
        }
        prop_assert_eq!(bits(&direct), bits(&want));
        #[cfg(target_arch = "x86_64")]
        if x86::available() {
            let mut got = vec![f32::NAN; hd];
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2, FMA and F16C (`x86::available`).
            unsafe { x86::weighted_rows(&p, &v, stride, &mut got) };
            prop_assert_eq!(bits(&got), bits(&want));
        }
    }
}

proptest! {
    /// The AVX2 activation quantiser gives the portable one's quants, scales and sums bit
    /// for bit: on activation-like blocks, on exact ties (`amax` = 127 makes the
    /// multiplier 1, so `k + 0.5` rounds half to even), and on blocks mixing NaN,
    /// infinities, subnormals, negative zero and magnitudes up to `f32::MAX`.
    #[test]
    fn quantize_q8_avx2_matches_portable(seed in any::<u64>(), kind in 0u8..4) {
        #[cfg(target_arch = "x86_64")]
        if x86::available() {
            let mut rng = Rng(seed);
            let specials = [
                f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e-45, -1e-40,
                f32::MIN_POSITIVE, f32::MAX, -f32::MAX, 3e-37, 0.5, -126.5,
            ];
            let x: Vec<f32> = (0..4 * 32)
                .map(|i| match kind {
                    0 => rng.values(1)[0],
                    1 if i % 32 == 0 => 127.0,
                    1 => (rng.below(255) as f32 - 127.0) + 0.5 * rng.below(2) as f32,
                    2 => rng.unit() * 1e-38,
                    _ if rng.below(4) == 0 => specials[rng.below(12) as usize],
                    _ => rng.unit() * [1e-30f32, 1.0, 1e30][rng.below(3) as usize],
                })
                .collect();
            let mut q = vec![0i8; x.len()];
            let mut d = vec![0f32; 4];
            let mut s = vec![0f32; 4];
            x86::quantize_q8_blocks(&x, &mut q, &mut d, &mut s);
            for b in 0..4 {
                let mut want = [0i8; 32];
                let (dh, sh) =
                    blocks::quantize_block_q8(x[32 * b..][..32].try_into().unwrap(), &mut want);
                prop_assert_eq!(&q[32 * b..32 * b + 32], &want[..], "block {}", b);
                prop_assert_eq!(d[b].to_bits(), f16_to_f32(dh).to_bits());
                prop_assert_eq!(s[b].to_bits(), f16_to_f32(sh).to_bits());
            }
            // Without the sums (Q8_0), the same quants and scales.
            let mut q0 = vec![0i8; x.len()];
            let mut d0 = vec![0f32; 4];
            x86::quantize_q8_blocks(&x, &mut q0, &mut d0, &mut []);
            prop_assert_eq!(q0, q);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&d0), bits(&d));
        }
    }
}
