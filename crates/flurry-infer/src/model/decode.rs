//! A decode step (one token for each of a few sequences) on a lockstep team
//! ([`crate::lockstep`]).
//!
//! Every thread runs the whole step: it keeps its own copy of the residual rows and
//! computes the row-wise steps (norms, residual additions, activations, quantising a
//! product's input) itself, which gives the same bits on every thread and needs no
//! meeting. The threads share only the products, whose weight rows they claim in chunks
//! (each against every sequence's row), and attention, whose (sequence, head) pairs they
//! claim; they meet at a spinning barrier after each (six times per layer). Each output
//! element is computed as on the pooled path, so logits are bit-identical to it.

#![allow(unsafe_code)]

use half::f16;

use super::{
    Arch, BatchItem, Head, Model, Scratch, Weight, add_inplace, attend, geglu, rms_norm_inplace,
    rms_norm_rows, rope,
};
use crate::lockstep::{Shared, Team};
use crate::quant::{self, QActs};

/// One thread's buffers for [`Model::decode_team`].
#[derive(Default)]
pub(super) struct Lane {
    /// The residual rows.
    pub(super) x: Vec<f32>,
    /// The normalised rows, or a product's output added to the residual.
    xb: Vec<f32>,
    /// The feed-forward activation.
    h: Vec<f32>,
    /// One query head.
    qh: Vec<f32>,
    scores: Vec<f32>,
    acts: QActs,
}

/// The most sequences a team decode step takes; larger batches use the pool, whose
/// products split the activation rows too.
const TEAM_MAX_ROWS: usize = 16;

impl Model {
    /// Whether [`Model::forward_batch`] runs `items` on `pool` as a team: one token each
    /// (a decode step) for at most [`TEAM_MAX_ROWS`] sequences.
    pub(super) fn decodes_as_team(items: &[BatchItem<'_>], pool: &rayon::ThreadPool) -> bool {
        (1..=TEAM_MAX_ROWS).contains(&items.len())
            && items.iter().all(|it| it.tokens.len() == 1)
            && Team::fits(pool.current_num_threads())
    }

    /// The layers and the output head for each item's one token, whose embeddings are in
    /// `s.x`, RoPE angles in `s.rope` and rows wanting logits in `s.out_rows`; the logits
    /// go to `s.logits`.
    pub(super) fn decode_team(
        &self,
        items: &mut [BatchItem<'_>],
        s: &mut Scratch,
        pool: &rayon::ThreadPool,
    ) {
        let hp = &self.hp;
        let (e, qd, kvd, ff, hd) = (hp.n_embd, hp.q_dim(), hp.kv_dim(), hp.n_ff, hp.head_dim);
        let rows = items.len();
        let rd = hp.rope_dims;
        let threads = pool.current_num_threads();
        let pos: Vec<usize> = items.iter().map(|it| it.cache.len).collect();
        // Room for each sequence's keys and values at its position, written during the
        // step: `cache[t][il]`.
        let cache: Vec<Vec<(Shared<'_, f16>, Shared<'_, f16>)>> = items
            .iter_mut()
            .zip(&pos)
            .map(|(it, &p)| {
                it.cache
                    .layers
                    .iter_mut()
                    .map(|(k, v)| {
                        for c in [&mut *k, &mut *v] {
                            c.truncate(p * kvd);
                            c.resize((p + 1) * kvd, f16::ZERO);
                        }
                        (Shared::new(k), Shared::new(v))
                    })
                    .collect()
            })
            .collect();
        if s.lanes.len() < threads {
            s.lanes.resize_with(threads, Default::default);
        }
        let out_rows = &s.out_rows;
        s.logits.resize(out_rows.len() * hp.n_vocab, 0.0);
        let team = Team::new(threads);
        let q = Shared::new(&mut s.q[..rows * qd]);
        let k = Shared::new(&mut s.k[..rows * kvd]);
        let v = Shared::new(&mut s.v[..rows * kvd]);
        let att = Shared::new(&mut s.att[..rows * qd]);
        let out = Shared::new(&mut s.xb[..rows * e]);
        let gate = Shared::new(&mut s.gate[..rows * ff]);
        let up = Shared::new(&mut s.up[..rows * ff]);
        let logits = Shared::new(&mut s.logits);
        let (x0, lanes, tables) = (&s.x[..rows * e], &s.lanes, &s.rope);
        let neox = hp.arch == Arch::Gemma3;
        // Gemma 3's query scale, as in `attn_in`.
        let q_scale = neox.then(|| 1.0 / (hd as f32).sqrt());
        let att_scale = if neox { 1.0 } else { 1.0 / (hd as f32).sqrt() };
        pool.broadcast(|ctx| {
            let _member = team.member();
            let me = ctx.index();
            let mut guard = lanes[me]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let lane = &mut *guard;
            lane.x.clear();
            lane.x.extend_from_slice(x0);
            lane.xb.resize(rows * e, 0.0);
            lane.h.resize(rows * ff, 0.0);
            lane.qh.resize(hd, 0.0);
            for (il, layer) in self.layers.iter().enumerate() {
                let angles = &tables[usize::from(hp.is_swa_layer(il))];
                rms_norm_rows(&lane.x, &mut lane.xb, &layer.attn_norm, hp.rms_eps, false);
                let qkv = [(&layer.wq, &q), (&layer.wk, &k), (&layer.wv, &v)];
                self.team_products(&team, me, &qkv, &lane.xb, &mut lane.acts);

                // Each position's keys (per-head norms, RoPE) and values into its cache.
                if me == 0 {
                    for t in 0..rows {
                        let (kc, vc) = &cache[t][il];
                        let p = pos[t];
                        // SAFETY: between the barriers after the products and before
                        // attention, only this thread touches `k`, `v` and the new cache
                        // rows.
                        let (kr, vr, kdst, vdst) = unsafe {
                            (
                                k.part_mut(t * kvd..(t + 1) * kvd),
                                v.part(t * kvd..(t + 1) * kvd),
                                kc.part_mut(p * kvd..(p + 1) * kvd),
                                vc.part_mut(p * kvd..(p + 1) * kvd),
                            )
                        };
                        if let Some(n) = &layer.k_norm {
                            for h in kr.chunks_exact_mut(hd) {
                                rms_norm_inplace(h, n, hp.rms_eps);
                            }
                        }
                        rope(kr, hd, &angles[t * rd..(t + 1) * rd], neox);
                        for (d, &x) in kdst.iter_mut().zip(&*kr).chain(vdst.iter_mut().zip(vr)) {
                            *d = f16::from_f32(x);
                        }
                    }
                }
                team.wait();

                // Attention, one (sequence, query head) pair per task.
                let window = if hp.is_swa_layer(il) {
                    hp.sliding_window
                } else {
                    None
                };
                let group = hp.n_head / hp.n_head_kv;
                while let Some(task) = team.claim(me, rows * hp.n_head) {
                    let (t, h) = (task / hp.n_head, task % hp.n_head);
                    let (kc, vc) = &cache[t][il];
                    let p = pos[t];
                    let at = t * qd + h * hd;
                    // SAFETY: `q` and the caches are only read during attention; head `h`
                    // of row `t` of `att` is this task's alone.
                    let (qsrc, kc, vc, o) = unsafe {
                        (
                            q.part(at..at + hd),
                            kc.part(0..(p + 1) * kvd),
                            vc.part(0..(p + 1) * kvd),
                            att.part_mut(at..at + hd),
                        )
                    };
                    let qh = &mut lane.qh;
                    qh.copy_from_slice(qsrc);
                    if let Some(n) = &layer.q_norm {
                        rms_norm_inplace(qh, n, hp.rms_eps);
                    }
                    rope(qh, hd, &angles[t * rd..(t + 1) * rd], neox);
                    if let Some(scale) = q_scale {
                        qh.iter_mut().for_each(|v| *v *= scale);
                    }
                    // llama.cpp converts the query to f16 for its dot with the f16 keys.
                    qh.iter_mut().for_each(|v| *v = f16::from_f32(*v).to_f32());
                    let head = Head {
                        kc,
                        vc,
                        kvd,
                        off: (h / group) * hd,
                        lo: window.map_or(0, |w| (p + 1).saturating_sub(w)),
                        pos: p,
                        scale: att_scale,
                    };
                    attend(&head, qh, &mut lane.scores, o);
                }
                team.wait();

                // SAFETY: `att` is only read until the next layer's attention.
                let att_rows = unsafe { att.part(0..rows * qd) };
                self.team_products(&team, me, &[(&layer.wo, &out)], att_rows, &mut lane.acts);
                self.add_product(lane, &out, layer.post_attn_norm.as_deref());

                // Feed-forward block.
                rms_norm_rows(&lane.x, &mut lane.xb, &layer.ffn_norm, hp.rms_eps, false);
                let gate_up = [(&layer.gate, &gate), (&layer.up, &up)];
                self.team_products(&team, me, &gate_up, &lane.xb, &mut lane.acts);
                // SAFETY: `gate` and `up` are only read until the next layer's products.
                let (g, u) = unsafe { (gate.part(0..rows * ff), up.part(0..rows * ff)) };
                lane.h.copy_from_slice(g);
                match hp.arch {
                    Arch::Llama => quant::swiglu(&mut lane.h, u),
                    Arch::Gemma3 => geglu(&mut lane.h, u),
                }
                self.team_products(&team, me, &[(&layer.down, &out)], &lane.h, &mut lane.acts);
                self.add_product(lane, &out, layer.post_ffn_norm.as_deref());
            }
            if !out_rows.is_empty() {
                // The rows wanting logits, normalised, side by side.
                lane.xb.resize(out_rows.len() * e, 0.0);
                for (o, &r) in out_rows.iter().enumerate() {
                    rms_norm_rows(
                        &lane.x[r * e..(r + 1) * e],
                        &mut lane.xb[o * e..(o + 1) * e],
                        &self.output_norm,
                        hp.rms_eps,
                        false,
                    );
                }
                let head = [(&self.output, &logits)];
                self.team_products(&team, me, &head, &lane.xb, &mut lane.acts);
            }
        });
        drop(cache);
        for it in items.iter_mut() {
            it.cache.len += 1;
        }
    }

    /// One step of products of the same input rows `x` (quantised by each thread into its
    /// own `acts`): matrices that take their input quantised alike share a step.
    fn team_products(
        &self,
        team: &Team,
        me: usize,
        jobs: &[(&Weight, &Shared<'_, f32>)],
        x: &[f32],
        acts: &mut QActs,
    ) {
        let mut rest = jobs;
        while let Some((first, _)) = rest.first() {
            let n = rest
                .iter()
                .take_while(|(w, _)| super::shares_acts(first, w))
                .count()
                .max(1);
            let (now, later) = rest.split_at(n);
            acts.quantize_serial(first.dtype, x, first.cols);
            // At most Q, K and V at once: on the stack, not allocated per step.
            let mut mats = [(self.qm(first), rest[0].1); 3];
            for (m, &(w, o)) in mats.iter_mut().zip(now) {
                *m = (self.qm(w), o);
            }
            quant::team_products(team, me, &mats[..n], acts);
            rest = later;
        }
    }

    /// Adds the products in `out` to the lane's residual rows, each after `norm` if there
    /// is one.
    fn add_product(&self, lane: &mut Lane, out: &Shared<'_, f32>, norm: Option<&[f32]>) {
        // SAFETY: `out` is written again only in the next step of products, which starts
        // after every thread has passed that step's barrier.
        let n = lane.xb.len();
        lane.xb.copy_from_slice(unsafe { out.part(0..n) });
        if let Some(n) = norm {
            for row in lane.xb.chunks_exact_mut(self.hp.n_embd) {
                rms_norm_inplace(row, n, self.hp.rms_eps);
            }
        }
        add_inplace(&mut lane.x, &lane.xb);
    }
}
