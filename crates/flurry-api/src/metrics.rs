//! Prometheus metrics in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::AppState;

/// Counters kept by the API.
#[derive(Debug, Default)]
pub struct Metrics {
    generated: AtomicU64,
    prompt: AtomicU64,
    /// Decode rate of the last finished request, as f64 bits.
    last_rate: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
}

impl Metrics {
    /// Records a finished generation.
    pub fn record(&self, prompt_tokens: usize, completion_tokens: usize, decode_ms: f64) {
        self.prompt
            .fetch_add(prompt_tokens as u64, Ordering::Relaxed);
        self.generated
            .fetch_add(completion_tokens as u64, Ordering::Relaxed);
        if completion_tokens > 1 && decode_ms > 0.0 {
            let rate = (completion_tokens - 1) as f64 / (decode_ms / 1000.0);
            self.last_rate.store(rate.to_bits(), Ordering::Relaxed);
        }
    }

    pub(crate) fn count_status(&self, status: u16) {
        *self
            .statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_default() += 1;
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) async fn render(State(st): State<AppState>) -> impl IntoResponse {
    let m = &st.metrics;
    let mut o = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in lines {
            let _ = writeln!(o, "{name}{labels} {v}");
        }
    };
    let one = |v: String| vec![(String::new(), v)];
    metric(
        "flurry_generated_tokens_total",
        "counter",
        "Tokens generated.",
        &one(m.generated.load(Ordering::Relaxed).to_string()),
    );
    metric(
        "flurry_prompt_tokens_total",
        "counter",
        "Prompt tokens processed.",
        &one(m.prompt.load(Ordering::Relaxed).to_string()),
    );
    metric(
        "flurry_tokens_per_second",
        "gauge",
        "Decode rate of the last finished request.",
        &one(f64::from_bits(m.last_rate.load(Ordering::Relaxed)).to_string()),
    );
    let loaded = st.agent.models.loaded();
    metric(
        "flurry_queue_depth",
        "gauge",
        "Requests waiting for an engine.",
        &one(loaded.iter().map(|l| l.queued).sum::<usize>().to_string()),
    );
    metric(
        "flurry_active_requests",
        "gauge",
        "Requests being generated.",
        &one(loaded.iter().map(|l| l.active).sum::<usize>().to_string()),
    );
    let loads: Vec<_> = loaded
        .iter()
        .map(|l| {
            (
                format!("{{model=\"{}\"}}", esc(&l.name)),
                l.load_secs.to_string(),
            )
        })
        .collect();
    metric(
        "flurry_model_load_seconds",
        "gauge",
        "Time taken to load each loaded model.",
        &loads,
    );
    let statuses: Vec<_> = m
        .statuses
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(s, n)| (format!("{{status=\"{s}\"}}"), n.to_string()))
        .collect();
    metric(
        "flurry_http_requests_total",
        "counter",
        "HTTP responses by status.",
        &statuses,
    );
    metric(
        "flurry_uptime_seconds",
        "gauge",
        "Seconds since the node started.",
        &one(st.started.elapsed().as_secs().to_string()),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        o,
    )
}
