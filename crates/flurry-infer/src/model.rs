//! The transformer forward pass for the llama and gemma3 families.
//!
//! One file holds both families because they differ in a handful of switches (norm
//! placement, rope layout, activation, sliding-window layers, embedding scale).
//! Numerics follow llama.cpp's CPU backend where it is cheap to do so — RMSNorm sums in
//! f64, RoPE angles by repeated multiplication, a half-precision KV cache, queries and
//! attention weights rounded to half precision before their dot products, GELU through
//! half precision — so that greedy output matches llama.cpp (tested against fixtures).
//!
//! Every output element is computed by one thread in one fixed order, so logits are
//! bit-identical whatever the thread count (see `docs/determinism.md`).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use half::f16;
use rayon::prelude::*;

use crate::gguf::{Gguf, TensorInfo};
use crate::quant::{self, QActs, QMatrix};
use crate::template::ChatTemplate;
use crate::tokenizer::Tokenizer;
use crate::{Error, GgmlType, Result};

mod decode;

/// Supported architecture families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Llama and look-alikes (SmolLM2, Llama 2/3, Mistral without SWA).
    Llama,
    /// Gemma 3 text models.
    Gemma3,
}

impl Arch {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(Self::Llama),
            "gemma3" => Some(Self::Gemma3),
            _ => None,
        }
    }

    /// The GGUF architecture name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Gemma3 => "gemma3",
        }
    }
}

/// Hyper-parameters read from GGUF metadata.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hparams {
    /// Architecture family.
    pub arch: Arch,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Size of one head.
    pub head_dim: usize,
    /// Feed-forward hidden size.
    pub n_ff: usize,
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Context length the model was trained for.
    pub n_ctx_train: usize,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// RoPE base frequency (global layers).
    pub rope_base: f32,
    /// RoPE base frequency for sliding-window layers.
    pub rope_base_swa: f32,
    /// Dimensions rotated by RoPE.
    pub rope_dims: usize,
    /// Sliding window, for architectures that use one.
    pub sliding_window: Option<usize>,
}

impl Hparams {
    fn from_gguf(g: &Gguf) -> Result<Self> {
        let arch_name = g.get_str("general.architecture")?;
        let arch = Arch::from_name(arch_name).ok_or_else(|| {
            g.error(format!(
                "unsupported architecture {arch_name:?}: Flurry runs llama and gemma3 models"
            ))
        })?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let req = |k: &str| -> Result<usize> {
            let v = g.get_u64(&key(k))?;
            if v == 0 || v > 1 << 24 {
                return Err(g.error(format!("metadata {} = {v} is out of range", key(k))));
            }
            Ok(v as usize)
        };
        let n_embd = req("embedding_length")?;
        let n_head = req("attention.head_count")?;
        let n_head_kv = match g.opt_u64(&key("attention.head_count_kv"))? {
            Some(v) => v as usize,
            None => n_head,
        };
        let head_dim = match g.opt_u64(&key("attention.key_length"))? {
            Some(v) => v as usize,
            None => n_embd / n_head,
        };
        if n_head_kv == 0 || n_head % n_head_kv != 0 || head_dim == 0 || head_dim % 2 != 0 {
            return Err(g.error(format!(
                "inconsistent attention shape: {n_head} heads, {n_head_kv} kv heads, head size {head_dim}"
            )));
        }
        let n_vocab = match g.opt_u64(&key("vocab_size"))? {
            Some(v) => v as usize,
            None => g.get_array("tokenizer.ggml.tokens")?.len(),
        };
        let rope_dims = match g.opt_u64(&key("rope.dimension_count"))? {
            Some(v) => v as usize,
            None => head_dim,
        };
        if rope_dims > head_dim || rope_dims % 2 != 0 {
            return Err(g.error(format!(
                "rope dimension {rope_dims} does not fit head size {head_dim}"
            )));
        }
        let rms_eps = g
            .opt_f64(&key("attention.layer_norm_rms_epsilon"))?
            .unwrap_or(1e-5) as f32;
        let rope_base = g.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0) as f32;
        let (sliding_window, rope_base_swa) = match arch {
            Arch::Llama => (None, rope_base),
            // llama.cpp hard-codes 10000 for Gemma 3's local layers.
            Arch::Gemma3 => (
                Some(g.opt_u64(&key("attention.sliding_window"))?.unwrap_or(512) as usize),
                10_000.0,
            ),
        };
        Ok(Self {
            arch,
            n_layer: req("block_count")?,
            n_embd,
            n_head,
            n_head_kv,
            head_dim,
            n_ff: req("feed_forward_length")?,
            n_vocab,
            n_ctx_train: req("context_length")?,
            rms_eps,
            rope_base,
            rope_base_swa,
            rope_dims,
            sliding_window,
        })
    }

    /// Whether layer `il` uses the sliding window (Gemma 3: five local layers, then one global).
    pub fn is_swa_layer(&self, il: usize) -> bool {
        self.sliding_window.is_some() && !(il + 1).is_multiple_of(6)
    }

    fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
}

/// A weight matrix: inside the mapped file, or repacked at load for the kernels.
#[derive(Debug, Clone)]
struct Weight {
    dtype: GgmlType,
    rows: usize,
    cols: usize,
    range: Range<usize>,
    /// The rows in [`quant::pack_matrix`]'s layout (then the mapped bytes are unused).
    packed: Option<Arc<memmap2::Mmap>>,
}

/// Rows read per `pread` while repacking (about 1 MiB).
const PACK_CHUNK: usize = 1 << 20;

/// Repacks `w` when this CPU's kernels prefer it, reading the file with `pread` so that
/// the mapped pages are never touched (resident memory holds one copy of the weights).
fn pack_weight(file: &std::fs::File, path: &Path, mut w: Weight) -> Result<Weight> {
    use std::os::unix::fs::FileExt;
    if !quant::prefers_packed(w.dtype) || w.rows == 0 {
        return Ok(w);
    }
    let rb = quant::row_bytes(w.dtype, w.cols);
    let per = (PACK_CHUNK / rb.max(1)).max(1);
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    // Anonymous memory with transparent huge pages where the kernel allows them: the
    // kernels stream every weight once per token, and 2 MiB pages save TLB misses.
    let mut out = memmap2::MmapMut::map_anon(w.range.len()).map_err(io)?;
    let _ = out.advise(memmap2::Advice::HugePage);
    let mut buf = vec![0u8; per * rb];
    for (c, dst) in out.chunks_mut(per * rb).enumerate() {
        let src = &mut buf[..dst.len()];
        file.read_exact_at(src, (w.range.start + c * per * rb) as u64)
            .map_err(io)?;
        for (s, d) in src.chunks_exact(rb).zip(dst.chunks_exact_mut(rb)) {
            quant::pack_row(w.dtype, s, d);
        }
    }
    w.packed = Some(Arc::new(out.make_read_only().map_err(io)?));
    Ok(w)
}

struct Layer {
    attn_norm: Vec<f32>,
    wq: Weight,
    wk: Weight,
    wv: Weight,
    wo: Weight,
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    post_attn_norm: Option<Vec<f32>>,
    ffn_norm: Vec<f32>,
    gate: Weight,
    up: Weight,
    down: Weight,
    post_ffn_norm: Option<Vec<f32>>,
}

/// A loaded model: hyper-parameters, weights (memory-mapped), tokenizer and template.
pub struct Model {
    gguf: Gguf,
    map: Arc<memmap2::Mmap>,
    hp: Hparams,
    layers: Vec<Layer>,
    tok_embd: Weight,
    output_norm: Vec<f32>,
    output: Weight,
    tokenizer: Arc<Tokenizer>,
    template: ChatTemplate,
    name: String,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("hparams", &self.hp)
            .finish()
    }
}

impl Model {
    /// Loads and validates a GGUF model file.
    pub fn load(path: &Path) -> Result<Self> {
        let mut gguf = Gguf::open(path)?;
        let hp = Hparams::from_gguf(&gguf)?;
        let tokenizer = Arc::new(Tokenizer::from_gguf(&gguf)?);
        if tokenizer.vocab_size() != hp.n_vocab {
            return Err(gguf.error(format!(
                "vocabulary has {} tokens but the model expects {}",
                tokenizer.vocab_size(),
                hp.n_vocab
            )));
        }
        let template = ChatTemplate::from_gguf(&gguf, &tokenizer)?;
        // The tokenizer holds the vocabulary now: free the metadata copy before the
        // weights are repacked, so the two never add up in the peak.
        gguf.release_large_arrays();
        let e = hp.n_embd;
        let plain_matrix = |name: &str, cols: usize, rows: usize| -> Result<Weight> {
            let t = require(&gguf, name)?;
            check_shape(&gguf, t, &[cols as u64, rows as u64])?;
            Ok(Weight {
                dtype: t.dtype,
                rows,
                cols,
                range: t.range.clone(),
                packed: None,
            })
        };
        let vector = |name: &str, n: usize| -> Result<Vec<f32>> {
            let t = require(&gguf, name)?;
            check_shape(&gguf, t, &[n as u64])?;
            let mut out = vec![0.0; n];
            match t.dtype {
                GgmlType::F32 | GgmlType::F16 => {
                    quant::dequantize_row(t.dtype, gguf.tensor_data(t), &mut out)
                }
                other => {
                    return Err(gguf.error(format!("tensor {name} has type {other}, expected F32")));
                }
            }
            if out.iter().any(|v| !v.is_finite()) {
                return Err(gguf.error(format!("tensor {name} holds non-finite values")));
            }
            Ok(out)
        };
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let matrix = |name: &str, cols: usize, rows: usize| -> Result<Weight> {
            pack_weight(&file, path, plain_matrix(name, cols, rows)?)
        };
        let gemma = hp.arch == Arch::Gemma3;
        let mut layers = Vec::with_capacity(hp.n_layer);
        for il in 0..hp.n_layer {
            let n = |s: &str| format!("blk.{il}.{s}.weight");
            layers.push(Layer {
                attn_norm: vector(&n("attn_norm"), e)?,
                wq: matrix(&n("attn_q"), e, hp.q_dim())?,
                wk: matrix(&n("attn_k"), e, hp.kv_dim())?,
                wv: matrix(&n("attn_v"), e, hp.kv_dim())?,
                wo: matrix(&n("attn_output"), hp.q_dim(), e)?,
                q_norm: gemma
                    .then(|| vector(&n("attn_q_norm"), hp.head_dim))
                    .transpose()?,
                k_norm: gemma
                    .then(|| vector(&n("attn_k_norm"), hp.head_dim))
                    .transpose()?,
                post_attn_norm: gemma
                    .then(|| vector(&n("post_attention_norm"), e))
                    .transpose()?,
                ffn_norm: vector(&n("ffn_norm"), e)?,
                gate: matrix(&n("ffn_gate"), e, hp.n_ff)?,
                up: matrix(&n("ffn_up"), e, hp.n_ff)?,
                down: matrix(&n("ffn_down"), hp.n_ff, e)?,
                post_ffn_norm: gemma.then(|| vector(&n("post_ffw_norm"), e)).transpose()?,
            });
        }
        // The embedding is read a row at a time from the mapped file (never packed); a
        // tied output head gets its own packed copy.
        let tok_embd = plain_matrix("token_embd.weight", e, hp.n_vocab)?;
        let output = match gguf.tensor("output.weight") {
            Some(_) => matrix("output.weight", e, hp.n_vocab)?,
            None => pack_weight(&file, path, tok_embd.clone())?,
        };
        let output_norm = vector("output_norm.weight", e)?;
        let name = gguf
            .opt_str("general.name")?
            .map(str::to_string)
            .unwrap_or_else(|| {
                path.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into()
            });
        crate::gguf::unmap_resident_pages(&gguf.map());
        Ok(Self {
            map: gguf.map(),
            gguf,
            hp,
            layers,
            tok_embd,
            output_norm,
            output,
            tokenizer,
            template,
            name,
        })
    }

    /// Hyper-parameters.
    pub fn hparams(&self) -> &Hparams {
        &self.hp
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tokenizer
    }

    /// The chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The parsed GGUF file (metadata, tensor table). Its large metadata arrays (the
    /// vocabulary: see [`Gguf::release_large_arrays`]) were freed once the tokenizer
    /// was built; [`Model::tokenizer`] has them.
    pub fn gguf(&self) -> &Gguf {
        &self.gguf
    }

    /// `general.name`, or the file stem.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of parameters (elements of all tensors).
    pub fn n_params(&self) -> u64 {
        self.gguf.tensors().iter().map(TensorInfo::elements).sum()
    }

    fn qm<'w>(&'w self, w: &'w Weight) -> QMatrix<'w> {
        QMatrix {
            dtype: w.dtype,
            rows: w.rows,
            cols: w.cols,
            data: w
                .packed
                .as_deref()
                .map_or(&self.map[w.range.clone()], |m| &m[..]),
            packed: w.packed.is_some(),
        }
    }

    /// A fresh, empty KV cache able to hold `capacity` positions.
    pub fn new_cache(&self, capacity: usize) -> KvCache {
        KvCache {
            layers: (0..self.hp.n_layer)
                .map(|_| (Vec::new(), Vec::new()))
                .collect(),
            len: 0,
            capacity,
            kv_dim: self.hp.kv_dim(),
        }
    }

    /// Runs `tokens` at positions `cache.len()..` and appends them to the cache.
    ///
    /// Returns the logits of the last token, or of every token when `all_logits`
    /// (row-major, `tokens.len() * n_vocab`).
    pub fn forward<'s>(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        all_logits: bool,
        scratch: &'s mut Scratch,
        pool: &rayon::ThreadPool,
    ) -> Result<&'s [f32]> {
        let logits = if all_logits {
            Logits::All
        } else {
            Logits::Last
        };
        self.forward_batch(
            &mut [BatchItem {
                cache,
                tokens,
                logits,
            }],
            scratch,
            pool,
        )
    }

    /// Runs several sequences in one pass: every matrix product reads the weights once
    /// for all of them (continuous batching). Each token's row is computed exactly as it
    /// would be alone, so a sequence's logits are bit-identical whatever else is in the
    /// batch.
    ///
    /// Returns logits rows in item order, as each item's [`Logits`] asks.
    pub fn forward_batch<'s>(
        &self,
        items: &mut [BatchItem<'_>],
        scratch: &'s mut Scratch,
        pool: &rayon::ThreadPool,
    ) -> Result<&'s [f32]> {
        // Running the whole pass inside the pool lets each kernel call hand work to
        // already-awake workers instead of waking them from outside every time.
        scratch.keep_hidden = false;
        pool.install(|| self.forward_inner(items, scratch, pool))
    }

    /// [`Model::forward_batch`], also returning the final-norm hidden row (the output
    /// head's input) of every row, row-major in batch order, `n_embd` values each, for
    /// commitments ([`crate::commit`]). The rows are the same bits whichever path
    /// computed them, as the logits are.
    pub fn forward_batch_hidden<'s>(
        &self,
        items: &mut [BatchItem<'_>],
        scratch: &'s mut Scratch,
        pool: &rayon::ThreadPool,
    ) -> Result<(&'s [f32], &'s [f32])> {
        scratch.keep_hidden = true;
        pool.install(|| self.forward_inner(items, scratch, pool).map(|_| ()))?;
        Ok((&scratch.logits, &scratch.hidden))
    }

    fn forward_inner<'s>(
        &self,
        items: &mut [BatchItem<'_>],
        scratch: &'s mut Scratch,
        pool: &rayon::ThreadPool,
    ) -> Result<&'s [f32]> {
        let hp = &self.hp;
        let s = scratch;
        s.rows.clear();
        s.out_rows.clear();
        for (ii, it) in items.iter().enumerate() {
            let n = it.tokens.len();
            if n == 0 {
                return Err(Error::InvalidRequest(
                    "forward needs at least one token".into(),
                ));
            }
            if it.cache.len + n > it.cache.capacity {
                return Err(Error::ContextOverflow {
                    prompt: it.cache.len + n,
                    context: it.cache.capacity,
                });
            }
            if let Some(&bad) = it.tokens.iter().find(|&&t| t as usize >= hp.n_vocab) {
                return Err(Error::InvalidRequest(format!(
                    "token id {bad} is outside the vocabulary"
                )));
            }
            let first_out = match it.logits {
                Logits::All => 0,
                Logits::Last => n - 1,
                Logits::None => n,
            };
            for t in 0..n {
                if t >= first_out {
                    s.out_rows.push(s.rows.len());
                }
                s.rows.push((ii, it.cache.len + t));
            }
        }
        let t_n = s.rows.len();
        let (e, qd, kvd, ff) = (hp.n_embd, hp.q_dim(), hp.kv_dim(), hp.n_ff);
        s.resize(t_n, e, qd, kvd, ff);
        // The rotation angles depend only on position and base: once per row, not once per
        // head and layer.
        for (table, base) in s.rope.iter_mut().zip([hp.rope_base, hp.rope_base_swa]) {
            table.clear();
            for &(_, pos) in &s.rows {
                rope_angles(pos, base, hp.rope_dims, table);
            }
        }

        // Embedding lookup. A tied output head that was repacked holds the embedding too:
        // its rows are read there, so the mapped file's pages stay untouched (a lookup in
        // the mapping makes the kernel map the pages around the row as well, tens of MiB
        // over a few hundred distinct tokens).
        let dtype = self.tok_embd.dtype;
        let row_bytes = quant::row_bytes(dtype, e);
        let packed = match &self.output.packed {
            Some(p) if self.output.range == self.tok_embd.range => Some(&p[..]),
            _ => None,
        };
        let embd = packed.unwrap_or(&self.map[self.tok_embd.range.clone()]);
        s.embd_row
            .resize(if packed.is_some() { row_bytes } else { 0 }, 0);
        let all_tokens = items.iter().flat_map(|it| it.tokens.iter());
        for (t, &tok) in all_tokens.enumerate() {
            let off = tok as usize * row_bytes;
            let dst = &mut s.x[t * e..(t + 1) * e];
            let mut src = &embd[off..off + row_bytes];
            if packed.is_some() {
                quant::unpack_row(dtype, src, &mut s.embd_row);
                src = &s.embd_row;
            }
            quant::dequantize_row(dtype, src, dst);
            if hp.arch == Arch::Gemma3 {
                let scale = (e as f32).sqrt();
                dst.iter_mut().for_each(|v| *v *= scale);
            }
        }

        if Self::decodes_as_team(items, pool) {
            self.decode_team(items, s, pool);
            if s.keep_hidden {
                let lane = s.lanes[0]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                s.hidden.resize(t_n * e, 0.0);
                rms_norm_rows(&lane.x, &mut s.hidden, &self.output_norm, hp.rms_eps, false);
            }
            return Ok(&s.logits);
        }

        // Prefill: runs of rows go through each layer's row-wise steps (norms, products,
        // RoPE, activations, residuals) as one task each, so a layer waits for the other
        // threads only before and after attention, which reads other rows. About 4 runs
        // per thread let a faster core take more of them (the cores of a shared machine
        // often run at different speeds); each run unpacks the weights once, which costs
        // little from 32 rows on. Otherwise each step is split across the pool by itself.
        let threads = pool.current_num_threads();
        let split = threads > 1 && t_n >= threads * quant::SPLIT_ACT_ROWS;
        let per = t_n.div_ceil(4 * threads).max(quant::SPLIT_ACT_ROWS);
        if split && s.row_acts.len() < t_n.div_ceil(per) {
            s.row_acts.resize_with(t_n.div_ceil(per), QActs::default);
        }
        for il in 0..self.layers.len() {
            let angles = &s.rope[usize::from(hp.is_swa_layer(il))];
            let per_row = hp.rope_dims;
            if split {
                (
                    s.x.par_chunks(per * e),
                    s.xb.par_chunks_mut(per * e),
                    s.q.par_chunks_mut(per * qd),
                    s.k.par_chunks_mut(per * kvd),
                    s.v.par_chunks_mut(per * kvd),
                    s.row_acts.par_iter_mut(),
                )
                    .into_par_iter()
                    .with_max_len(1)
                    .enumerate()
                    .for_each(|(c, (x, xb, q, k, v, acts))| {
                        let angles = &angles[c * per * per_row..];
                        self.attn_in(il, x, [xb, q, k, v], acts, angles, Exec::Serial);
                    });
            } else {
                let bufs = [&mut s.xb[..], &mut s.q, &mut s.k, &mut s.v];
                self.attn_in(il, &s.x, bufs, &mut s.acts, angles, Exec::Pool(pool));
            }
            let mut off = 0;
            for it in items.iter_mut() {
                let n = it.tokens.len();
                it.cache.append(
                    il,
                    &s.k[off * kvd..(off + n) * kvd],
                    &s.v[off * kvd..(off + n) * kvd],
                );
                off += n;
            }
            let window = if hp.is_swa_layer(il) {
                hp.sliding_window
            } else {
                None
            };
            let scale = if hp.arch == Arch::Gemma3 {
                1.0
            } else {
                1.0 / (hp.head_dim as f32).sqrt()
            };
            let kv: Vec<(&[f16], &[f16])> = items
                .iter()
                .map(|it| {
                    (
                        it.cache.layers[il].0.as_slice(),
                        it.cache.layers[il].1.as_slice(),
                    )
                })
                .collect();
            attention(hp, &s.q, &s.rows, &kv, window, scale, &mut s.att, pool);
            if split {
                (
                    s.x.par_chunks_mut(per * e),
                    s.att.par_chunks(per * qd),
                    s.xb.par_chunks_mut(per * e),
                    s.gate.par_chunks_mut(per * ff),
                    s.up.par_chunks_mut(per * ff),
                    s.row_acts.par_iter_mut(),
                )
                    .into_par_iter()
                    .with_max_len(1)
                    .for_each(|(x, att, xb, gate, up, acts)| {
                        self.attn_out_ffn(il, x, att, [xb, gate, up], acts, Exec::Serial);
                    });
            } else {
                let bufs = [&mut s.xb[..], &mut s.gate, &mut s.up];
                self.attn_out_ffn(il, &mut s.x, &s.att, bufs, &mut s.acts, Exec::Pool(pool));
            }
        }
        for it in items.iter_mut() {
            it.cache.len += it.tokens.len();
        }

        if s.keep_hidden {
            s.hidden.resize(t_n * e, 0.0);
            rms_norm_rows(&s.x, &mut s.hidden, &self.output_norm, hp.rms_eps, true);
        }
        // Output head, only for the rows whose logits are wanted.
        let rows = s.out_rows.len();
        s.xb.resize(rows * e, 0.0);
        for (o, &r) in s.out_rows.iter().enumerate() {
            let scale = rms_scale(&s.x[r * e..(r + 1) * e], hp.rms_eps);
            for ((dst, &xv), &wv) in s.xb[o * e..(o + 1) * e]
                .iter_mut()
                .zip(&s.x[r * e..(r + 1) * e])
                .zip(&self.output_norm)
            {
                *dst = (xv * scale) * wv;
            }
        }
        s.xb.truncate(rows * e);
        s.logits.resize(rows * hp.n_vocab, 0.0);
        let out = self.qm(&self.output);
        s.acts.quantize(out.dtype, &s.xb, e);
        quant::matmul(out, &s.acts, &mut s.logits, pool);
        Ok(&s.logits)
    }

    /// A layer's steps up to attention for rows `x` (each row on its own): the norm, the
    /// Q, K and V products into `[xb, q, k, v]`, the per-head norms, RoPE (`angles`: the
    /// rows' pairs from [`rope_angles`]) and Gemma 3's query scale.
    fn attn_in(
        &self,
        il: usize,
        x: &[f32],
        [xb, q, k, v]: [&mut [f32]; 4],
        acts: &mut QActs,
        angles: &[f32],
        exec: Exec<'_>,
    ) {
        let (hp, layer) = (&self.hp, &self.layers[il]);
        let par = exec.par();
        rms_norm_rows(x, xb, &layer.attn_norm, hp.rms_eps, par);
        self.matmul3(&layer.wq, &layer.wk, &layer.wv, xb, [q, k, v], acts, exec);
        let per_row = hp.rope_dims;
        let neox = hp.arch == Arch::Gemma3;
        // Per token: the per-head norms (Gemma), RoPE, and Gemma 3's query scale of
        // 1/sqrt(query_pre_attn_scalar) (= head size for the sizes we run; a power of
        // two, so exact).
        let q_scale = (hp.arch == Arch::Gemma3).then(|| 1.0 / (hp.head_dim as f32).sqrt());
        let rows = [
            (q, hp.q_dim(), &layer.q_norm, q_scale),
            (k, hp.kv_dim(), &layer.k_norm, None),
        ];
        for (m, len, norm, scale) in rows {
            for_rows(m, len, par, |t, r| {
                if let Some(n) = norm {
                    for h in r.chunks_exact_mut(hp.head_dim) {
                        rms_norm_inplace(h, n, hp.rms_eps);
                    }
                }
                rope(
                    r,
                    hp.head_dim,
                    &angles[t * per_row..(t + 1) * per_row],
                    neox,
                );
                if let Some(scale) = scale {
                    r.iter_mut().for_each(|v| *v *= scale);
                }
            });
        }
    }

    /// A layer's steps after attention for rows `x` (each row on its own): the output
    /// product of `att`, the feed-forward block and both residual additions into `x`;
    /// `[xb, gate, up]` are scratch rows.
    fn attn_out_ffn(
        &self,
        il: usize,
        x: &mut [f32],
        att: &[f32],
        [xb, gate, up]: [&mut [f32]; 3],
        acts: &mut QActs,
        exec: Exec<'_>,
    ) {
        let (hp, layer) = (&self.hp, &self.layers[il]);
        let (e, par) = (hp.n_embd, exec.par());
        self.matmul1(&layer.wo, att, xb, acts, exec);
        if let Some(n) = &layer.post_attn_norm {
            for_rows(xb, e, par, |_, row| rms_norm_inplace(row, n, hp.rms_eps));
        }
        add_inplace(x, xb);

        // Feed-forward block.
        rms_norm_rows(x, xb, &layer.ffn_norm, hp.rms_eps, par);
        self.matmul2(&layer.gate, &layer.up, xb, [gate, up], acts, exec);
        let up = &*up;
        for_rows(gate, hp.n_ff, par, |t, g| {
            let u = &up[t * hp.n_ff..(t + 1) * hp.n_ff];
            match hp.arch {
                Arch::Llama => quant::swiglu(g, u),
                Arch::Gemma3 => geglu(g, u),
            }
        });
        self.matmul1(&layer.down, gate, xb, acts, exec);
        if let Some(n) = &layer.post_ffn_norm {
            for_rows(xb, e, par, |_, row| rms_norm_inplace(row, n, hp.rms_eps));
        }
        add_inplace(x, xb);
    }

    /// `out` = `x` times `w`, with `x` quantised into `acts`.
    fn matmul1(&self, w: &Weight, x: &[f32], out: &mut [f32], acts: &mut QActs, exec: Exec<'_>) {
        exec.quantize(acts, w.dtype, x, w.cols);
        exec.matmul(self.qm(w), acts, out);
    }

    fn matmul2(
        &self,
        a: &Weight,
        b: &Weight,
        x: &[f32],
        outs: [&mut [f32]; 2],
        acts: &mut QActs,
        exec: Exec<'_>,
    ) {
        let [oa, ob] = outs;
        if shares_acts(a, b) {
            // Same activation format: quantise the input once for both.
            exec.quantize(acts, a.dtype, x, a.cols);
            exec.matmul_many(&mut [(self.qm(a), oa), (self.qm(b), ob)], acts);
        } else {
            self.matmul1(a, x, oa, acts, exec);
            self.matmul1(b, x, ob, acts, exec);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn matmul3(
        &self,
        a: &Weight,
        b: &Weight,
        c: &Weight,
        x: &[f32],
        outs: [&mut [f32]; 3],
        acts: &mut QActs,
        exec: Exec<'_>,
    ) {
        let [oa, ob, oc] = outs;
        if shares_acts(a, b) && shares_acts(a, c) {
            exec.quantize(acts, a.dtype, x, a.cols);
            let mut jobs = [(self.qm(a), oa), (self.qm(b), ob), (self.qm(c), oc)];
            exec.matmul_many(&mut jobs, acts);
        } else {
            self.matmul2(a, b, x, [oa, ob], acts, exec);
            self.matmul1(c, x, oc, acts, exec);
        }
    }
}

/// Whether `a` and `b` take their input quantised the same way.
fn shares_acts(a: &Weight, b: &Weight) -> bool {
    quant::act_type(a.dtype) == quant::act_type(b.dtype) && quant::act_type(a.dtype).is_some()
}

/// Where the steps of a layer run.
#[derive(Clone, Copy)]
enum Exec<'p> {
    /// Each step split across the pool's threads (call from inside the pool).
    Pool(&'p rayon::ThreadPool),
    /// All on the calling thread: one thread's share of the rows in prefill.
    Serial,
}

impl Exec<'_> {
    fn par(self) -> bool {
        matches!(self, Self::Pool(_))
    }

    fn quantize(self, acts: &mut QActs, weight: GgmlType, x: &[f32], cols: usize) {
        match self {
            Self::Pool(_) => acts.quantize(weight, x, cols),
            Self::Serial => acts.quantize_serial(weight, x, cols),
        }
    }

    fn matmul(self, w: QMatrix<'_>, acts: &QActs, out: &mut [f32]) {
        match self {
            Self::Pool(pool) => quant::matmul(w, acts, out, pool),
            Self::Serial => quant::matmul_serial(w, acts, out),
        }
    }

    fn matmul_many(self, jobs: &mut [(QMatrix<'_>, &mut [f32])], acts: &QActs) {
        match self {
            Self::Pool(pool) => quant::matmul_many(jobs, acts, pool),
            Self::Serial => {
                for (w, out) in jobs.iter_mut() {
                    quant::matmul_serial(*w, acts, out);
                }
            }
        }
    }
}

fn require<'a>(g: &'a Gguf, name: &str) -> Result<&'a TensorInfo> {
    g.tensor(name)
        .ok_or_else(|| g.error(format!("missing tensor {name}")))
}

fn check_shape(g: &Gguf, t: &TensorInfo, want: &[u64]) -> Result<()> {
    if t.dims != want {
        return Err(g.error(format!(
            "tensor {} has shape {:?}, expected {:?} for this architecture",
            t.name, t.dims, want
        )));
    }
    Ok(())
}

/// One sequence's share of a [`Model::forward_batch`] call.
#[derive(Debug)]
pub struct BatchItem<'a> {
    /// The sequence's cache; the tokens are appended to it.
    pub cache: &'a mut KvCache,
    /// Tokens to run, at positions `cache.len()..`.
    pub tokens: &'a [u32],
    /// Which logits to return.
    pub logits: Logits,
}

/// Which rows of logits a [`BatchItem`] wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// None (a prompt chunk that is not the last): skips the output head.
    None,
    /// The last token's.
    Last,
    /// Every token's.
    All,
}

/// Per-sequence key/value cache, in half precision like llama.cpp's default cache.
/// Attention converts each value back to f32 exactly, so storing halves gives the same
/// results as rounding to f16 and keeping f32, with half the bytes to read per token.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<(Vec<f16>, Vec<f16>)>,
    len: usize,
    capacity: usize,
    kv_dim: usize,
}

impl KvCache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum positions.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets everything after the first `len` positions.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            for (k, v) in &mut self.layers {
                k.truncate(len * self.kv_dim);
                v.truncate(len * self.kv_dim);
            }
        }
    }

    fn append(&mut self, il: usize, k: &[f32], v: &[f32]) {
        let (kc, vc) = &mut self.layers[il];
        kc.truncate(self.len * self.kv_dim);
        vc.truncate(self.len * self.kv_dim);
        kc.extend(k.iter().map(|&x| f16::from_f32(x)));
        vc.extend(v.iter().map(|&x| f16::from_f32(x)));
    }
}

/// Reusable buffers for [`Model::forward`], so steady-state decoding allocates nothing.
#[derive(Default)]
pub struct Scratch {
    x: Vec<f32>,
    xb: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    logits: Vec<f32>,
    acts: QActs,
    /// (batch item, position) of every row.
    rows: Vec<(usize, usize)>,
    /// Rows whose logits are returned.
    out_rows: Vec<usize>,
    /// RoPE `(cos, sin)` pairs per row, `rope_dims / 2` of them: for the global base,
    /// then for the sliding-window layers' base.
    rope: [Vec<f32>; 2],
    /// One embedding row in the GGUF layout, when it is read from a packed tied head.
    embd_row: Vec<u8>,
    /// Prefill: each thread's quantised rows.
    row_acts: Vec<QActs>,
    /// One-row decode: each thread's buffers ([`Model::decode_team`]).
    lanes: Vec<std::sync::Mutex<decode::Lane>>,
    /// Whether each pass keeps the final-norm rows of all its rows in `hidden`.
    keep_hidden: bool,
    /// The last pass's final-norm hidden rows (the output head's input), every row in
    /// batch order, when `keep_hidden`.
    hidden: Vec<f32>,
}

impl Scratch {
    fn resize(&mut self, t: usize, e: usize, qd: usize, kvd: usize, ff: usize) {
        self.x.resize(t * e, 0.0);
        self.xb.resize(t * e, 0.0);
        self.q.resize(t * qd, 0.0);
        self.k.resize(t * kvd, 0.0);
        self.v.resize(t * kvd, 0.0);
        self.att.resize(t * qd, 0.0);
        self.gate.resize(t * ff, 0.0);
        self.up.resize(t * ff, 0.0);
    }
}

fn rms_scale(x: &[f32], eps: f32) -> f32 {
    // llama.cpp sums squares in double precision.
    let sum: f64 = x.iter().map(|&v| f64::from(v * v)).sum();
    let mean = (sum / x.len() as f64) as f32;
    1.0 / (mean + eps).sqrt()
}

fn rms_norm_rows(x: &[f32], out: &mut [f32], w: &[f32], eps: f32, par: bool) {
    let n = w.len();
    let norm = |(xr, or): (&[f32], &mut [f32])| {
        let scale = rms_scale(xr, eps);
        for ((o, &xv), &wv) in or.iter_mut().zip(xr).zip(w) {
            *o = (xv * scale) * wv;
        }
    };
    if par && x.len() / n >= PAR_ROWS {
        x.par_chunks_exact(n)
            .zip(out.par_chunks_exact_mut(n))
            .for_each(norm);
    } else {
        x.chunks_exact(n)
            .zip(out.chunks_exact_mut(n))
            .for_each(norm);
    }
}

/// From this many rows on, the row-wise steps of a layer (norms, RoPE, activations) run
/// on the pool too: during prefill they would otherwise leave the other threads idle
/// between matrix products. Each row is computed the same way either way.
const PAR_ROWS: usize = 8;

/// `f` on each `len`-element row of `x` (with its index); with `par`, on the pool from
/// [`PAR_ROWS`] rows on (call from inside the pool).
fn for_rows(x: &mut [f32], len: usize, par: bool, f: impl Fn(usize, &mut [f32]) + Sync) {
    if par && x.len() / len >= PAR_ROWS {
        x.par_chunks_exact_mut(len)
            .enumerate()
            .for_each(|(t, r)| f(t, r));
    } else {
        for (t, r) in x.chunks_exact_mut(len).enumerate() {
            f(t, r);
        }
    }
}

fn rms_norm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    let scale = rms_scale(x, eps);
    for (v, &wv) in x.iter_mut().zip(w) {
        *v = (*v * scale) * wv;
    }
}

fn add_inplace(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += *b;
    }
}

/// Appends the RoPE `(cos, sin)` pairs of position `pos` (`dims / 2` of them) to `out`.
fn rope_angles(pos: usize, base: f32, dims: usize, out: &mut Vec<f32>) {
    let theta_scale = base.powf(-2.0 / dims as f32);
    let mut theta = pos as f32;
    for _ in 0..dims / 2 {
        let (sin, cos) = theta.sin_cos();
        out.extend([cos, sin]);
        theta *= theta_scale;
    }
}

/// Rotary embedding over every head of one token, with the `(cos, sin)` pairs of its
/// position from [`rope_angles`] (`angles.len()` = the rotated dimensions). `neox` pairs
/// element i with i + dims/2 (Gemma); otherwise adjacent pairs (llama GGUFs are permuted
/// for this).
fn rope(x: &mut [f32], head_dim: usize, angles: &[f32], neox: bool) {
    let dims = angles.len();
    for head in x.chunks_exact_mut(head_dim) {
        for (i, cs) in angles.chunks_exact(2).enumerate() {
            let (cos, sin) = (cs[0], cs[1]);
            let (a, b) = if neox {
                (i, i + dims / 2)
            } else {
                (2 * i, 2 * i + 1)
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos - x1 * sin;
            head[b] = x0 * sin + x1 * cos;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn attention(
    hp: &Hparams,
    q: &[f32],
    rows: &[(usize, usize)],
    kv: &[(&[f16], &[f16])],
    window: Option<usize>,
    scale: f32,
    out: &mut [f32],
    pool: &rayon::ThreadPool,
) {
    let (hd, nh) = (hp.head_dim, hp.n_head);
    let group = hp.n_head / hp.n_head_kv;
    let kvd = hp.kv_dim();
    pool.install(|| {
        out.par_chunks_mut(hd).enumerate().for_each_init(
            || (vec![0.0f32; hd], Vec::new()),
            |(qh, scores), (idx, o)| {
                let (t, h) = (idx / nh, idx % nh);
                let (item, pos) = rows[t];
                let (kc, vc) = kv[item];
                let lo = window.map_or(0, |w| (pos + 1).saturating_sub(w));
                let kvh = h / group;
                // llama.cpp converts the query to f16 for its dot with the f16 keys.
                for (d, &v) in qh
                    .iter_mut()
                    .zip(&q[(t * nh + h) * hd..(t * nh + h + 1) * hd])
                {
                    *d = f16::from_f32(v).to_f32();
                }
                let head = Head {
                    kc,
                    vc,
                    kvd,
                    off: kvh * hd,
                    lo,
                    pos,
                    scale,
                };
                attend(&head, qh, scores, o);
            },
        );
    });
}

/// One query head's view of the cache.
struct Head<'a> {
    kc: &'a [f16],
    vc: &'a [f16],
    kvd: usize,
    off: usize,
    lo: usize,
    pos: usize,
    scale: f32,
}

/// Attention of one query head over positions `lo..=pos`. The arithmetic is the same on
/// every path (eight-lane dot products, sequential softmax sum), so the AVX2 build of
/// this function gives bit-identical results; it only uses wider registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn attend_generic(
    h: &Head<'_>,
    qh: &[f32],
    scores: &mut Vec<f32>,
    o: &mut [f32],
    scores_of: impl Fn(&[f32], &[f16], usize, usize, Range<usize>, f32, &mut Vec<f32>),
    exp_shifted: impl Fn(&mut [f32], f32) -> f64,
    round_f16: impl Fn(&mut [f32]),
    weighted: impl Fn(&[f32], &[f16], usize, &mut [f32]),
) {
    scores.clear();
    scores_of(qh, h.kc, h.kvd, h.off, h.lo..h.pos + 1, h.scale, scores);
    let mut max = f32::NEG_INFINITY;
    for &s in scores.iter() {
        max = max.max(s);
    }
    let sum = exp_shifted(scores, max);
    let inv = (1.0 / sum) as f32;
    for s in scores.iter_mut() {
        *s *= inv;
    }
    // Probabilities are rounded to half precision, as llama.cpp stores them.
    round_f16(scores);
    weighted(scores, &h.vc[h.lo * h.kvd + h.off..], h.kvd, o);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn attend_avx2(h: &Head<'_>, qh: &[f32], scores: &mut Vec<f32>, o: &mut [f32]) {
    // Closures, not function items: a closure inherits this function's target features
    // and is inlined, whereas a function item passed as `impl Fn` is called through a
    // shim compiled for the baseline target (which left the dots in SSE, 2 lanes a load).
    attend_generic(
        h,
        qh,
        scores,
        o,
        |q, kc, stride, off, keys, scale, out| {
            quant::attn_scores_avx2(q, kc, stride, off, keys, scale, out);
        },
        |xs, max| quant::exp_shifted_avx2(xs, max),
        |x| quant::round_f16_slice_avx2(x),
        |p, v, stride, o| quant::weighted_rows_avx2(p, v, stride, o),
    );
}

#[allow(unsafe_code)]
fn attend(h: &Head<'_>, qh: &[f32], scores: &mut Vec<f32>, o: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("f16c")
    {
        // SAFETY: the CPU supports AVX2, FMA and F16C, the features `attend_avx2` is
        // compiled for.
        return unsafe { attend_avx2(h, qh, scores, o) };
    }
    attend_generic(
        h,
        qh,
        scores,
        o,
        quant::attn_scores,
        quant::exp_shifted,
        quant::round_f16_slice,
        quant::weighted_rows,
    );
}

fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044_715;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh())
}

/// GELU of every half-precision input, rounded to half precision, as f32: llama.cpp
/// evaluates GELU through such a table, and a lookup is far cheaper than `tanh`.
fn gelu_table() -> &'static [f32] {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| f16::from_f32(gelu(f16::from_bits(bits).to_f32())).to_f32())
            .collect()
    })
}

fn geglu(gate: &mut [f32], up: &[f32]) {
    let table = gelu_table();
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x * u
        } else {
            table[usize::from(f16::from_f32(x).to_bits())] * u
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_preserves_norm_and_position_zero_is_identity() {
        let mut x: Vec<f32> = (0..16).map(|i| i as f32 * 0.1 - 0.7).collect();
        let orig = x.clone();
        let angles = |pos| {
            let mut a = Vec::new();
            rope_angles(pos, 10_000.0, 8, &mut a);
            a
        };
        rope(&mut x, 8, &angles(0), false);
        assert_eq!(x, orig);
        for neox in [false, true] {
            let mut y = orig.clone();
            rope(&mut y, 8, &angles(17), neox);
            let n0: f32 = orig.iter().map(|v| v * v).sum();
            let n1: f32 = y.iter().map(|v| v * v).sum();
            assert!((n0 - n1).abs() < 1e-4, "{n0} {n1}");
            assert_ne!(y, orig);
        }
    }

    #[test]
    fn rms_norm_unit_rms() {
        let x = [3.0f32, -4.0, 0.0, 1.0];
        let mut out = [0.0f32; 4];
        rms_norm_rows(&x, &mut out, &[1.0; 4], 0.0, false);
        let rms = (out.iter().map(|v| v * v).sum::<f32>() / 4.0).sqrt();
        assert!((rms - 1.0).abs() < 1e-6);
    }

    #[test]
    fn attention_paths_agree_bit_for_bit() {
        let n = 300;
        let r = |i: usize| ((i * 2654435761) % 1000) as f32 / 500.0 - 1.0;
        // (head size, cache row width, head offset): SmolLM2 (64 of 192), Gemma 3 (256),
        // and sizes with 8-lane and 64-lane tails.
        for (hd, kvd, off) in [(64, 192, 64), (256, 256, 0), (72, 144, 72), (13, 26, 0)] {
            let kc: Vec<f16> = (0..n * kvd).map(|i| f16::from_f32(r(i))).collect();
            let vc: Vec<f16> = (0..n * kvd).map(|i| f16::from_f32(r(i + 7))).collect();
            let qh: Vec<f32> = (0..hd).map(|i| r(i + 13)).collect();
            let head = Head {
                kc: &kc,
                vc: &vc,
                kvd,
                off,
                lo: 3,
                pos: n - 1,
                scale: 0.125,
            };
            let (mut s1, mut s2) = (Vec::new(), Vec::new());
            let (mut o1, mut o2) = (vec![0.0; hd], vec![0.0; hd]);
            attend(&head, &qh, &mut s1, &mut o1);
            attend_generic(
                &head,
                &qh,
                &mut s2,
                &mut o2,
                quant::attn_scores,
                quant::exp_shifted,
                quant::round_f16_slice,
                quant::weighted_rows,
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&o1), bits(&o2), "head size {hd}");
            assert_eq!(bits(&s1), bits(&s2), "head size {hd}");
            assert!(o1.iter().any(|&x| x != 0.0));
        }
        // Every head size the models use, and odd ones with a tail: close to a float64 sum.
        for hd in [1, 7, 8, 63, 64, 65, 128, 256] {
            let a: Vec<f32> = (0..hd).map(|i| r(i + 3)).collect();
            let b: Vec<f16> = (0..hd).map(|i| f16::from_f32(r(i + 911))).collect();
            let d = quant::dot_f16(&a, &b);
            let seq: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(x * y.to_f32()))
                .sum();
            assert!((f64::from(d) - seq).abs() < 1e-3, "{d} vs {seq}");
        }
    }

    #[test]
    fn f16_rounding_matches_half() {
        // Every f32 in [0, 1] at a stride, plus the boundaries of the subnormal range and
        // ties, against the `half` crate.
        let check = |x: f32| {
            let want = f16::from_f32(x).to_f32();
            let got = quant::round_f16_nonneg(x);
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "x = {x:e} ({:#x})",
                x.to_bits()
            );
        };
        let mut b = 0u32;
        while b <= 1.0f32.to_bits() {
            check(f32::from_bits(b));
            b += 4099;
        }
        for e in [-25i32, -24, -15, -14, -13, 0] {
            let base = 2f32.powi(e);
            for k in -40i32..40 {
                check(f32::from_bits((base.to_bits() as i32 + k) as u32));
            }
        }
        for m in 0..2048u32 {
            // Exact ties between two halves (and their neighbours) in a normal binade.
            let t = f32::from_bits(0x3F00_0000 | (m << 13) | 0x1000);
            check(t);
            check(f32::from_bits(t.to_bits() - 1));
            check(f32::from_bits(t.to_bits() + 1));
        }
        check(65504.0);
    }

    #[test]
    fn gelu_table_equals_direct_evaluation() {
        // Inside (-10, 10), where geglu uses the table (outside it has fixed branches).
        let mut x = -9.99f32;
        while x < 10.0 {
            let mut a = [x];
            geglu(&mut a, &[1.5]);
            let direct = f16::from_f32(gelu(f16::from_f32(x).to_f32())).to_f32() * 1.5;
            assert_eq!(a[0].to_bits(), direct.to_bits(), "x = {x}");
            x += 0.0137;
        }
    }

    #[test]
    fn gelu_matches_known_values() {
        assert!((gelu(1.0) - 0.841_192).abs() < 1e-4);
        assert!(gelu(-3.0).abs() < 0.01);
    }
}
