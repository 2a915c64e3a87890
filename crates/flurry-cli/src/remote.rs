//! Talking to a running `flurry up` of the same `$FLURRY_HOME` over its API.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use flurry_node::NodeFile;
use serde_json::Value;

/// A client for the local node.
pub(crate) struct Remote {
    pub(crate) node: NodeFile,
    agent: ureq::Agent,
}

/// One line of a streamed answer, or the end.
pub(crate) enum Line {
    Json(Value),
    End,
    Failed(String),
}

impl Remote {
    /// The node running for these paths, if one answers.
    pub(crate) fn find(paths: &flurry_config::Paths) -> Option<Self> {
        let node = NodeFile::find(paths)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(2)))
            .http_status_as_error(false)
            .build()
            .into();
        let r = Self { node, agent };
        // A file whose process is alive but does not answer is not ours to use.
        r.get("/api/version").ok().map(|_| r)
    }

    /// A client for another node's API at `url` (with its token, if it wants one).
    pub(crate) fn at(url: &str, token: Option<String>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            node: NodeFile {
                url: url.trim_end_matches('/').to_string(),
                pid: 0,
                token: token.unwrap_or_default(),
                peer_id: String::new(),
            },
            agent,
        }
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.node.token)
    }

    pub(crate) fn get(&self, path: &str) -> Result<Value> {
        let resp = self
            .agent
            .get(format!("{}{path}", self.node.url))
            .header("Authorization", &self.auth())
            .call()
            .with_context(|| format!("cannot reach the node at {}", self.node.url))?;
        read_json(resp)
    }

    pub(crate) fn delete(&self, path: &str) -> Result<Value> {
        let resp = self
            .agent
            .delete(format!("{}{path}", self.node.url))
            .header("Authorization", &self.auth())
            .call()
            .with_context(|| format!("cannot reach the node at {}", self.node.url))?;
        read_json(resp)
    }

    fn send(&self, path: &str, body: &Value) -> Result<ureq::http::Response<ureq::Body>> {
        self.agent
            .post(format!("{}{path}", self.node.url))
            .header("Authorization", &self.auth())
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .with_context(|| format!("cannot reach the node at {}", self.node.url))
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<Value> {
        read_json(self.send(path, body)?)
    }

    /// Posts and streams the answer's lines (NDJSON, or SSE `data:` lines) through a
    /// channel read by the caller; dropping the receiver closes the connection at the
    /// next line, which stops generation on the node.
    pub(crate) fn stream(&self, path: &str, body: &Value) -> Result<mpsc::Receiver<Line>> {
        let resp = self.send(path, body)?;
        if !resp.status().is_success() {
            read_json(resp)?;
            bail!("the node refused the request");
        }
        let (tx, rx) = mpsc::sync_channel(64);
        let reader = BufReader::new(resp.into_body().into_reader());
        std::thread::spawn(move || {
            for line in reader.lines() {
                let line = match line {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = tx.send(Line::Failed(e.to_string()));
                        return;
                    }
                };
                let data = line.strip_prefix("data: ").unwrap_or(&line).trim();
                if data.is_empty() || data.starts_with(':') {
                    continue;
                }
                if data == "[DONE]" {
                    break;
                }
                let msg = match serde_json::from_str(data) {
                    Ok(v) => Line::Json(v),
                    Err(e) => Line::Failed(format!("bad line from the node: {e}")),
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
            let _ = tx.send(Line::End);
        });
        Ok(rx)
    }
}

fn read_json(resp: ureq::http::Response<ureq::Body>) -> Result<Value> {
    let status = resp.status();
    let text = resp
        .into_body()
        .read_to_string()
        .context("cannot read the node's answer")?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let msg = v["error"]["message"]
            .as_str()
            .or_else(|| v["error"].as_str())
            .map_or_else(|| v.to_string(), str::to_string);
        bail!("{msg} (HTTP {})", status.as_u16());
    }
    Ok(v)
}
