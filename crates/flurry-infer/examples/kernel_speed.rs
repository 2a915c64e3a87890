//! Kernel timing, GGUF layout vs packed layout, one activation row and eight, then the
//! GEMM path (the layout the engine uses) at the two models' prefill shapes:
//! `cargo run --release -p flurry-infer --example kernel_speed`.
//!
//! `kernel_speed scaling` instead asks what a second core adds to compute-bound kernel
//! work on this machine: the serial GEMM alone, then on two OS threads at once (no
//! pool, no shared data), then split by the engine's 2-thread pool.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use flurry_infer::GgmlType;
use flurry_infer::quant::{self, QActs, QMatrix};

fn main() {
    // `kernel_speed gemm [N [TYPE [ROWSxCOLS]]]` runs only the GEMM table (with N
    // activation rows, only TYPE's shapes, or TYPE at one shape).
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("scaling") => return scaling(),
        Some("gemm") => {}
        _ => layouts(),
    }
    let ns = match args.next().map(|n| n.parse()) {
        Some(Ok(n)) => vec![n],
        _ => vec![8, 16, 64],
    };
    let only = args.next();
    let shape = args.next().and_then(|s| {
        let (r, c) = s.split_once('x')?;
        Some((r.parse().ok()?, c.parse().ok()?))
    });
    for n in ns {
        gemm(n, only.as_deref(), shape);
    }
}

/// Serial GEMM throughput (G multiply-adds/s) at prefill shapes, `n` activation rows.
fn gemm(n: usize, only: Option<&str>, shape: Option<(usize, usize)>) {
    let table = [
        (GgmlType::Q4_1, 1536, 576),
        (GgmlType::Q5_0, 2048, 640),
        (GgmlType::Q4K, 640, 1024),
        (GgmlType::Q6K, 640, 2048),
        (GgmlType::Q8_0, 256, 640),
        (GgmlType::Q8_0, 2048, 640),
        (GgmlType::Q5_0, 256, 640),
    ];
    let mut shapes = table.to_vec();
    if let Some((rows, cols)) = shape {
        let t = table.iter().find(|s| only == Some(&s.0.to_string()));
        shapes = t.map(|t| vec![(t.0, rows, cols)]).unwrap_or_default();
    }
    for (dtype, rows, cols) in shapes {
        if only.is_some_and(|t| t != dtype.to_string()) {
            continue;
        }
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 2654435761usize % 1000) as f32 - 500.0) / 300.0)
            .collect();
        let data = quant::quantize_weights(dtype, &x);
        let plain = QMatrix {
            dtype,
            rows,
            cols,
            data: &data,
            packed: false,
        };
        let pk;
        let w = if quant::prefers_packed(dtype) {
            pk = quant::pack_matrix(plain);
            QMatrix {
                data: &pk,
                packed: true,
                ..plain
            }
        } else {
            plain
        };
        let a: Vec<f32> = (0..n * cols)
            .map(|i| ((i * 40503usize % 997) as f32 - 498.0) / 250.0)
            .collect();
        let mut acts = QActs::default();
        acts.quantize(dtype, &a, cols);
        let mut out = vec![0f32; n * rows];
        let iters = (100 * 576 * 576 / (rows * cols)).max(3);
        // The best of 7 timings: this machine's neighbours make single timings noisy.
        let mut s = f64::INFINITY;
        for _ in 0..7 {
            quant::matmul_serial(w, &acts, &mut out);
            let t = Instant::now();
            for _ in 0..iters {
                quant::matmul_serial(w, &acts, &mut out);
            }
            s = s.min(t.elapsed().as_secs_f64() / iters as f64);
        }
        println!(
            "gemm {dtype} {rows}x{cols} n={n}: {:.2} G MAC/s",
            (rows * cols * n) as f64 / s / 1e9
        );
    }
}

/// GGUF layout vs packed layout, one activation row and eight.
fn layouts() {
    for (dtype, rows, cols) in [
        (GgmlType::Q4_1, 576, 576),
        (GgmlType::Q4_1, 1536, 576),
        (GgmlType::Q8_0, 4096, 576),
        (GgmlType::Q5_0, 640, 640),
        (GgmlType::Q4_1, 65536, 576),
        (GgmlType::Q8_0, 49152, 576),
        (GgmlType::Q5_0, 49152, 640),
        (GgmlType::Q8_0, 65536, 640),
    ] {
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 2654435761usize % 1000) as f32 - 500.0) / 300.0)
            .collect();
        let data = quant::quantize_weights(dtype, &x);
        let w = QMatrix {
            dtype,
            rows,
            cols,
            data: &data,
            packed: false,
        };
        let pk = quant::pack_matrix(w);
        let wp = QMatrix {
            data: &pk,
            packed: true,
            ..w
        };
        for n in [1usize, 8] {
            let a: Vec<f32> = x[..n * cols].to_vec();
            let mut acts = QActs::default();
            acts.quantize(dtype, &a, cols);
            let mut out = vec![0f32; n * rows];
            let mut time = |w: QMatrix<'_>| {
                let iters = (2000 / n * 576 * 576 / (rows * cols)).max(5);
                quant::matmul_serial(w, &acts, &mut out);
                let t = Instant::now();
                for _ in 0..iters {
                    quant::matmul_serial(w, &acts, &mut out);
                }
                t.elapsed().as_secs_f64() / iters as f64 * 1e6
            };
            let (a, b) = (time(w), time(wp));
            println!(
                "{dtype} {rows}x{cols} n={n}: gguf {a:.1} us, packed {b:.1} us, ratio {:.2}",
                a / b
            );
        }
    }
}

/// Multiply-adds per second of the serial GEMM (Q5_0, 2048 x 640, 64 activation rows, in
/// cache) alone, on two OS threads at once (each figure per thread), and of the 2-thread
/// pool split.
fn scaling() {
    let (dtype, rows, cols, n) = (GgmlType::Q5_0, 2048, 640, 64);
    let x: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 2654435761usize % 1000) as f32 - 500.0) / 300.0)
        .collect();
    let pk = quant::pack_matrix(QMatrix {
        dtype,
        rows,
        cols,
        data: &quant::quantize_weights(dtype, &x),
        packed: false,
    });
    let w = QMatrix {
        dtype,
        rows,
        cols,
        data: &pk,
        packed: true,
    };
    let a: Vec<f32> = (0..n * cols)
        .map(|i| ((i * 40503usize % 997) as f32 - 498.0) / 250.0)
        .collect();
    let mut acts = QActs::default();
    acts.quantize(dtype, &a, cols);
    let macs = (rows * cols * n) as f64;
    // G multiply-adds/s of `f` (one GEMM per call), the best of 7 timings of 20 calls.
    let rate = |f: &mut dyn FnMut()| {
        let mut best = f64::INFINITY;
        for _ in 0..7 {
            f();
            let t = Instant::now();
            for _ in 0..20 {
                f();
            }
            best = best.min(t.elapsed().as_secs_f64() / 20.0);
        }
        macs / best / 1e9
    };
    let serial = || {
        let mut out = vec![0f32; n * rows];
        rate(&mut || quant::matmul_serial(w, &acts, &mut out))
    };
    for round in 0..3 {
        let alone = serial();
        let both = std::thread::scope(|s| {
            let h = s.spawn(serial);
            let mine = serial();
            (mine, h.join().expect("probe thread"))
        });
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("pool");
        let mut out = vec![0f32; n * rows];
        // Called from inside the pool, as the model calls it.
        let pooled = pool.install(|| rate(&mut || quant::matmul(w, &acts, &mut out, &pool)));
        println!(
            "round {round}: alone {alone:.1}, two threads at once {:.1} + {:.1}, 2-thread pool \
             {pooled:.1} G MAC/s (second core adds {:.2}x)",
            both.0,
            both.1,
            (both.0 + both.1) / alone
        );
    }
}
