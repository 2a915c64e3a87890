//! Quick engine timing without the CLI: `cargo run --release -p flurry-infer --example
//! decode_speed -- MODEL.gguf THREADS`. Prints pp256 and tg128 (depth 0) tokens/s. The
//! benchmark of record is `make bench`; this is for iterating on kernels.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use flurry_infer::model::{Model, Scratch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: decode_speed MODEL.gguf [THREADS]")?;
    let threads: usize = args.next().map_or(Ok(1), |t| t.parse())?;
    let model = Model::load(std::path::Path::new(&path))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut scratch = Scratch::default();
    let vocab = model.hparams().n_vocab as u32;
    let toks: Vec<u32> = (0..256u32).map(|i| (i * 7919 + 13) % vocab).collect();
    for round in 0..3 {
        let mut cache = model.new_cache(256 + 129);
        let t = Instant::now();
        model.forward(&mut cache, &toks, false, &mut scratch, &pool)?;
        let pp = 256.0 / t.elapsed().as_secs_f64();
        let mut cache = model.new_cache(130);
        let t = Instant::now();
        for i in 0..128u32 {
            model.forward(
                &mut cache,
                &[(i * 31 + 7) % vocab],
                false,
                &mut scratch,
                &pool,
            )?;
        }
        let tg = 128.0 / t.elapsed().as_secs_f64();
        println!("round {round}: pp256 {pp:.1} t/s, tg128 {tg:.1} t/s");
    }
    Ok(())
}
