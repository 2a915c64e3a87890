//! The BERT encoder (post-LayerNorm, absolute positions, GELU) in f32, one sequence at a
//! time, followed by mean pooling and L2 normalisation.

use std::path::Path;

use serde_json::Value;

use crate::Error;
use crate::safetensors::SafeTensors;

/// Hyperparameters of a BERT encoder (from `config.json`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    pub(crate) vocab_size: usize,
    pub(crate) hidden: usize,
    pub(crate) layers: usize,
    pub(crate) heads: usize,
    pub(crate) intermediate: usize,
    pub(crate) max_positions: usize,
    pub(crate) type_vocab_size: usize,
    pub(crate) eps: f32,
}

impl Default for Config {
    /// all-MiniLM-L6-v2.
    fn default() -> Self {
        Config {
            vocab_size: 30522,
            hidden: 384,
            layers: 6,
            heads: 12,
            intermediate: 1536,
            max_positions: 512,
            type_vocab_size: 2,
            eps: 1e-12,
        }
    }
}

impl Config {
    /// Reads a Hugging Face `config.json` of a BERT model; missing keys keep the
    /// all-MiniLM-L6-v2 values.
    pub(crate) fn from_json(bytes: &[u8], path: &Path) -> Result<Self, Error> {
        let bad = |msg: String| Error::Config {
            path: path.to_path_buf(),
            msg,
        };
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        if !v.is_object() {
            return Err(bad("not a JSON object".into()));
        }
        if let Some(t) = v.get("model_type").and_then(Value::as_str)
            && t != "bert"
        {
            return Err(bad(format!("model_type {t:?}, expected \"bert\"")));
        }
        if let Some(act) = v.get("hidden_act").and_then(Value::as_str)
            && act != "gelu"
        {
            return Err(bad(format!(
                "hidden_act {act:?}, only \"gelu\" is supported"
            )));
        }
        if let Some(p) = v.get("position_embedding_type").and_then(Value::as_str)
            && p != "absolute"
        {
            return Err(bad(format!(
                "position_embedding_type {p:?}, only \"absolute\" is supported"
            )));
        }
        let d = Config::default();
        let size = |key: &str, default: usize| -> Result<usize, Error> {
            match v.get(key) {
                None => Ok(default),
                Some(x) => x
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n > 0 && n <= 1 << 20)
                    .ok_or_else(|| bad(format!("`{key}` is {x}, expected a positive size"))),
            }
        };
        let c = Config {
            vocab_size: size("vocab_size", d.vocab_size)?,
            hidden: size("hidden_size", d.hidden)?,
            layers: size("num_hidden_layers", d.layers)?,
            heads: size("num_attention_heads", d.heads)?,
            intermediate: size("intermediate_size", d.intermediate)?,
            max_positions: size("max_position_embeddings", d.max_positions)?,
            type_vocab_size: size("type_vocab_size", d.type_vocab_size)?,
            eps: match v.get("layer_norm_eps") {
                None => d.eps,
                Some(x) => x
                    .as_f64()
                    .filter(|e| *e > 0.0 && *e < 1.0)
                    .ok_or_else(|| bad(format!("`layer_norm_eps` is {x}")))?
                    as f32,
            },
        };
        if !c.hidden.is_multiple_of(c.heads) {
            return Err(bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                c.hidden, c.heads
            )));
        }
        Ok(c)
    }
}

/// A dense layer `y = x W^T + b`; `W` (`[out, in]` in the file) is kept in panels (see
/// [`pack`]).
#[derive(Debug)]
struct Linear {
    panels: Vec<f32>,
    b: Vec<f32>,
    inp: usize,
    out: usize,
}

#[derive(Debug)]
struct LayerNorm {
    g: Vec<f32>,
    b: Vec<f32>,
}

#[derive(Debug)]
struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    up: Linear,
    down: Linear,
    out_norm: LayerNorm,
}

/// The weights of a BERT encoder.
#[derive(Debug)]
pub(crate) struct Bert {
    pub(crate) cfg: Config,
    word: Vec<f32>,
    pos: Vec<f32>,
    token_type: Vec<f32>,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
}

impl Bert {
    /// Takes the encoder's tensors from `st`, checking each name, dtype and shape.
    pub(crate) fn from_safetensors(st: &SafeTensors, cfg: Config) -> Result<Self, Error> {
        let h = cfg.hidden;
        let linear = |name: &str, out: usize, inp: usize| -> Result<Linear, Error> {
            let w = st.f32_tensor(&format!("{name}.weight"), &[out, inp])?;
            Ok(Linear {
                panels: pack(&w, out, inp),
                b: st.f32_tensor(&format!("{name}.bias"), &[out])?,
                inp,
                out,
            })
        };
        let norm = |name: &str| -> Result<LayerNorm, Error> {
            Ok(LayerNorm {
                g: st.f32_tensor(&format!("{name}.weight"), &[h])?,
                b: st.f32_tensor(&format!("{name}.bias"), &[h])?,
            })
        };
        let word = st.f32_tensor("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?;
        let pos = st.f32_tensor(
            "embeddings.position_embeddings.weight",
            &[cfg.max_positions, h],
        )?;
        let token_type = st.f32_tensor(
            "embeddings.token_type_embeddings.weight",
            &[cfg.type_vocab_size, h],
        )?;
        let emb_norm = norm("embeddings.LayerNorm")?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let p = format!("encoder.layer.{i}");
            layers.push(Layer {
                q: linear(&format!("{p}.attention.self.query"), h, h)?,
                k: linear(&format!("{p}.attention.self.key"), h, h)?,
                v: linear(&format!("{p}.attention.self.value"), h, h)?,
                attn_out: linear(&format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                up: linear(&format!("{p}.intermediate.dense"), cfg.intermediate, h)?,
                down: linear(&format!("{p}.output.dense"), h, cfg.intermediate)?,
                out_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Bert {
            cfg,
            word,
            pos,
            token_type,
            emb_norm,
            layers,
        })
    }

    /// The mean-pooled, L2-normalised embeddings of sequences of token ids. The ids
    /// must be below the vocabulary size and each sequence at most `max_positions`
    /// long. The dense layers run over the rows of all sequences together (weights are
    /// read once per block of rows, not once per text); attention runs per sequence.
    /// Every row is computed independently of the others, so a sequence gets the same
    /// bits alone or in any batch.
    pub(crate) fn embed_batch(&self, seqs: &[Vec<u32>]) -> Vec<Vec<f32>> {
        let h = self.cfg.hidden;
        let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
        assert!(
            lens.iter().all(|&n| n <= self.cfg.max_positions),
            "sequence longer than the positions"
        );
        let total: usize = lens.iter().sum();
        // Embeddings: word + position + token type 0, then LayerNorm.
        let mut x = vec![0f32; total * h];
        let positions = seqs.iter().flat_map(|s| s.iter().enumerate());
        for ((i, &id), row) in positions.zip(x.chunks_exact_mut(h)) {
            let w = &self.word[id as usize * h..][..h];
            let p = &self.pos[i * h..][..h];
            let t = &self.token_type[..h];
            for j in 0..h {
                row[j] = w[j] + p[j] + t[j];
            }
        }
        layer_norm(&mut x, &self.emb_norm, self.cfg.eps);

        let mut q = vec![0f32; total * h];
        let mut k = vec![0f32; total * h];
        let mut v = vec![0f32; total * h];
        let mut ctx = vec![0f32; total * h];
        let mut tmp = vec![0f32; total * h];
        let mut up = vec![0f32; total * self.cfg.intermediate];
        for layer in &self.layers {
            linear(&x, &layer.q, &mut q);
            linear(&x, &layer.k, &mut k);
            linear(&x, &layer.v, &mut v);
            self.attention(&lens, &q, &k, &v, &mut ctx);
            linear(&ctx, &layer.attn_out, &mut tmp);
            for (t, xv) in tmp.iter_mut().zip(&x) {
                *t += xv;
            }
            layer_norm(&mut tmp, &layer.attn_norm, self.cfg.eps);
            std::mem::swap(&mut x, &mut tmp);
            linear(&x, &layer.up, &mut up);
            for u in up.iter_mut() {
                *u = gelu(*u);
            }
            linear(&up, &layer.down, &mut tmp);
            for (t, xv) in tmp.iter_mut().zip(&x) {
                *t += xv;
            }
            layer_norm(&mut tmp, &layer.out_norm, self.cfg.eps);
            std::mem::swap(&mut x, &mut tmp);
        }

        let mut out = Vec::with_capacity(seqs.len());
        let mut rows = x.as_slice();
        for &n in &lens {
            let (mine, rest) = rows.split_at(n * h);
            rows = rest;
            out.push(mean_pool_normalize(mine, h));
        }
        out
    }

    /// Multi-head self-attention of each sequence (rows `lens[0]`, then `lens[1]`, ...
    /// of `q`, `k`, `v`) into `ctx`, sequences in parallel.
    fn attention(&self, lens: &[usize], q: &[f32], k: &[f32], v: &[f32], ctx: &mut [f32]) {
        use rayon::prelude::*;
        let h = self.cfg.hidden;
        let heads = self.cfg.heads;
        let hd = h / heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut parts = Vec::with_capacity(lens.len());
        let (mut start, mut rest) = (0, ctx);
        for &n in lens {
            let (mine, tail) = rest.split_at_mut(n * h);
            parts.push((start, n, mine));
            rest = tail;
            start += n * h;
        }
        parts.into_par_iter().for_each(|(start, n, ctx)| {
            let (q, k, v) = (
                &q[start..][..n * h],
                &k[start..][..n * h],
                &v[start..][..n * h],
            );
            let mut scores = vec![0f32; n];
            for hh in 0..heads {
                let off = hh * hd;
                for i in 0..n {
                    let qi = &q[i * h + off..][..hd];
                    let mut max = f32::NEG_INFINITY;
                    for (j, s) in scores.iter_mut().enumerate() {
                        *s = dot(qi, &k[j * h + off..][..hd]) * scale;
                        max = max.max(*s);
                    }
                    let mut sum = 0f32;
                    for s in scores.iter_mut() {
                        *s = (*s - max).exp();
                        sum += *s;
                    }
                    let inv = 1.0 / sum;
                    let out = &mut ctx[i * h + off..][..hd];
                    out.fill(0.0);
                    for (j, &s) in scores.iter().enumerate() {
                        let p = s * inv;
                        for (o, &vv) in out.iter_mut().zip(&v[j * h + off..][..hd]) {
                            *o += p * vv;
                        }
                    }
                }
            }
        });
    }
}

/// Mean of the rows (all tokens; there is no padding), then L2 normalisation.
fn mean_pool_normalize(x: &[f32], h: usize) -> Vec<f32> {
    let n = x.len() / h;
    let mut pooled = vec![0f64; h];
    for row in x.chunks_exact(h) {
        for (p, &r) in pooled.iter_mut().zip(row) {
            *p += f64::from(r);
        }
    }
    let pooled: Vec<f32> = pooled
        .iter()
        .map(|p| (p / n.max(1) as f64) as f32)
        .collect();
    let norm = pooled
        .iter()
        .map(|&p| f64::from(p) * f64::from(p))
        .sum::<f64>()
        .sqrt()
        .max(1e-12);
    pooled
        .iter()
        .map(|&p| (f64::from(p) / norm) as f32)
        .collect()
}

/// Dot product with eight independent accumulators (vectorisable).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, ar) = a.as_chunks::<8>();
    let (bc, br) = b.as_chunks::<8>();
    for (x, y) in ac.iter().zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    s
}

/// Output columns per weight panel.
const PANEL: usize = 8;

/// Repacks a `[out, inp]` row-major weight into panels of [`PANEL`] output columns: panel
/// `p` holds, for each input `k`, the weights of outputs `PANEL * p ..` (zero-padded past
/// `out`), so the kernel reads each panel front to back.
fn pack(w: &[f32], out: usize, inp: usize) -> Vec<f32> {
    let mut p = vec![0f32; out.div_ceil(PANEL) * inp * PANEL];
    for (o, row) in w.chunks_exact(inp).enumerate() {
        let panel = &mut p[(o / PANEL) * inp * PANEL..][..inp * PANEL];
        for (k, &v) in row.iter().enumerate() {
            panel[k * PANEL + o % PANEL] = v;
        }
    }
    p
}

/// `R` rows of `x` times one panel: `R x PANEL` outputs, each summed over the inputs in
/// order (no reassociation), so an output does not depend on `R` or the other rows.
#[inline(always)]
fn kernel<const R: usize>(x: [&[f32]; R], panel: &[f32]) -> [[f32; PANEL]; R] {
    let w = panel.as_chunks::<PANEL>().0;
    // Equal lengths, stated up front, let the compiler drop the bounds checks below.
    assert!(x.iter().all(|x| x.len() == w.len()));
    let mut acc = [[0f32; PANEL]; R];
    for (k, wk) in w.iter().enumerate() {
        for r in 0..R {
            let a = x[r][k];
            for l in 0..PANEL {
                acc[r][l] += a * wk[l];
            }
        }
    }
    acc
}

/// `R` rows of `x` times one panel plus bias, into columns `o0..` of `R` rows of `y`.
fn rows_times_panel<const R: usize>(x: [&[f32]; R], l: &Linear, p: usize, y: &mut [f32]) {
    let panel = &l.panels[p * l.inp * PANEL..][..l.inp * PANEL];
    let acc = kernel::<R>(x, panel);
    let o0 = p * PANEL;
    let width = PANEL.min(l.out - o0);
    for (r, acc) in acc.iter().enumerate() {
        let yr = &mut y[r * l.out + o0..][..width];
        for ((y, a), b) in yr.iter_mut().zip(acc).zip(&l.b[o0..]) {
            *y = a + b;
        }
    }
}

/// Rows of `x` (`[n, l.inp]`) times `l.w^T` plus bias into `y` (`[n, l.out]`). Blocks
/// of rows run in parallel; in a block, each panel of eight outputs is applied to the
/// block's rows four at a time (a register tile) while it is in cache. Every output is
/// the same in-order sum whatever the tiling and the thread count, so a row's result
/// does not depend on the other rows.
fn linear(x: &[f32], l: &Linear, y: &mut [f32]) {
    const ROWS: usize = 64;
    let n = x.len() / l.inp;
    debug_assert_eq!(y.len(), n * l.out);
    let panels = l.out.div_ceil(PANEL);
    let block = |(xb, yb): (&[f32], &mut [f32])| {
        for p in 0..panels {
            let mut xs = xb.chunks_exact(4 * l.inp);
            let mut ys = yb.chunks_exact_mut(4 * l.out);
            for (x4, y4) in xs.by_ref().zip(ys.by_ref()) {
                let (a, rest) = x4.split_at(l.inp);
                let (b, rest) = rest.split_at(l.inp);
                let (c, d) = rest.split_at(l.inp);
                rows_times_panel::<4>([a, b, c, d], l, p, y4);
            }
            for (xr, yr) in xs
                .remainder()
                .chunks_exact(l.inp)
                .zip(ys.into_remainder().chunks_exact_mut(l.out))
            {
                rows_times_panel::<1>([xr], l, p, yr);
            }
        }
    };
    // Enough blocks for every thread, but no smaller than 8 rows.
    let threads = rayon::current_num_threads().max(1);
    let rows = n.div_ceil(threads).clamp(8, ROWS).next_multiple_of(4);
    if n > rows {
        use rayon::prelude::*;
        x.par_chunks(rows * l.inp)
            .zip(y.par_chunks_mut(rows * l.out))
            .for_each(block);
    } else {
        block((x, y));
    }
}

/// LayerNorm over each row of `x`, in place.
fn layer_norm(x: &mut [f32], ln: &LayerNorm, eps: f32) {
    let h = ln.g.len();
    for row in x.chunks_exact_mut(h) {
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / h as f64;
        let var = row
            .iter()
            .map(|&v| {
                let d = f64::from(v) - mean;
                d * d
            })
            .sum::<f64>()
            / h as f64;
        let inv = 1.0 / (var + f64::from(eps)).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&ln.g).zip(&ln.b) {
            *v = ((f64::from(*v) - mean) * inv) as f32 * g + b;
        }
    }
}

/// GELU with the exact error function (`hidden_act: "gelu"`).
fn gelu(x: f32) -> f32 {
    let x = f64::from(x);
    (0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2))) as f32
}

/// The error function, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (-2.0, -0.995_322_265_0),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn dot_and_linear() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..19).map(|i| (i % 3) as f32).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), want);
        let l = Linear {
            panels: pack(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3),
            b: vec![0.5, -0.5],
            inp: 3,
            out: 2,
        };
        let x = vec![1.0, 0.0, -1.0, 2.0, 1.0, 0.0];
        let mut y = vec![0.0; 4];
        linear(&x, &l, &mut y);
        assert_eq!(y, vec![-1.5, -2.5, 4.5, 12.5]);
    }

    #[test]
    fn linear_rows_do_not_depend_on_each_other() {
        let (n, inp, out) = (37, 13, 19);
        let val = |i: usize| ((i * 7919) % 101) as f32 / 50.0 - 1.0;
        let w: Vec<f32> = (0..out * inp).map(val).collect();
        let l = Linear {
            panels: pack(&w, out, inp),
            b: (0..out).map(|i| val(i + 5)).collect(),
            inp,
            out,
        };
        let x: Vec<f32> = (0..n * inp).map(|i| val(i + 11)).collect();
        let mut y = vec![0.0; n * out];
        linear(&x, &l, &mut y);
        for r in 0..n {
            let mut one = vec![0.0; out];
            linear(&x[r * inp..][..inp], &l, &mut one);
            assert_eq!(one, y[r * out..][..out], "row {r}");
            for o in 0..out {
                let want: f32 = (0..inp)
                    .map(|k| x[r * inp + k] * w[o * inp + k])
                    .sum::<f32>()
                    + l.b[o];
                assert!((want - one[o]).abs() < 1e-5, "row {r} col {o}");
            }
        }
    }
}
