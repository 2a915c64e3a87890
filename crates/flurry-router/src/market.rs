//! Buying a generation on the open market (`model: "market/NAME"`): the privacy policy
//! for strangers first, then the egress log, then the market's call for proposals,
//! award and paid job; the provider's frames come back as engine events, like a circle
//! peer's.

use std::time::Instant;

use flurry_infer::engine::Prompt;
use flurry_privacy::Destination;
use tokio::sync::mpsc;

use crate::remote::{accepted, relay};
use crate::{Error, GenSpec, PeerUsed, Router, Started};

/// The model a request asks the market for: `market/NAME` (or `market` alone, for the
/// default model's name on sellers: `default`).
pub(crate) fn market_model(model: &str) -> Option<&str> {
    match model.strip_prefix("market") {
        Some("") | Some("/") => Some("default"),
        Some(rest) => rest.strip_prefix('/'),
        None => None,
    }
}

impl Router {
    /// Buys the chat generation `spec` from the market's sellers of `model`.
    pub(crate) async fn start_market(
        &self,
        model: String,
        mut spec: GenSpec,
    ) -> Result<Started, Error> {
        let market = self.market.clone().ok_or(Error::MarketOff)?;
        // `market/default` is this node's default model, bought by its ModelId: the same
        // weights whoever sells them.
        let model = if model == "default" {
            let models = self.agent.models.clone();
            tokio::task::spawn_blocking(move || models.resolve(None))
                .await
                .map_err(|_| Error::Lost)??
                .model_id
                .to_string()
        } else {
            model
        };
        let Prompt::Chat(msgs) = std::mem::replace(&mut spec.prompt, Prompt::Raw(String::new()))
        else {
            return Err(Error::NotChat);
        };
        let (request, restorer) = self
            .leave(
                Destination::Market,
                msgs,
                None,
                &spec,
                (
                    &format!("market (model {model})"),
                    "market inference request",
                ),
                None,
            )
            .await?;
        let started = Instant::now();
        let mut purchase = market.buy(&model, request, spec.max_price).await?;
        let label = format!("market seller of {model}");
        let first = purchase
            .frames
            .recv()
            .await
            .ok_or_else(|| Error::PeerClosed {
                label: label.clone(),
            })?;
        let (model_name, prompt_tokens) = accepted(
            &label,
            first.map_err(|e| Error::Generation(format!("{label}: {e}")))?,
        )?;
        let provider = purchase
            .report
            .lock()
            .map(|r| r.provider.clone())
            .unwrap_or_default();
        let relayed = match &self.p2p {
            Some(p) => p
                .net
                .peers()
                .await
                .unwrap_or_default()
                .iter()
                .find(|x| x.peer_id == provider)
                .is_some_and(|x| x.relayed),
            None => false,
        };
        // The market's frames carry its errors as text; the relay wants the network's.
        let (ftx, frames) = mpsc::channel(64);
        let mut from_market = purchase.frames;
        let who = label.clone();
        tokio::spawn(async move {
            while let Some(f) = from_market.recv().await {
                let f = f.map_err(|reason| flurry_net::Error::Infer {
                    peer: who.clone(),
                    reason,
                });
                if ftx.send(f).await.is_err() {
                    return;
                }
            }
        });
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(relay(
            frames,
            tx,
            label,
            started,
            prompt_tokens,
            restorer,
            None,
        ));
        Ok(Started {
            model: None,
            model_name: format!("market/{model_name}"),
            prompt_tokens,
            events: rx,
            citations: Vec::new(),
            peer: Some(PeerUsed {
                peer_id: provider,
                name: None,
                relayed,
                setup_ms: started.elapsed().as_secs_f64() * 1e3,
            }),
            market: Some(purchase.report),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::market_model;

    #[test]
    fn market_models_are_named_after_the_prefix() {
        assert_eq!(market_model("market/smol"), Some("smol"));
        assert_eq!(market_model("market"), Some("default"));
        assert_eq!(market_model("market/"), Some("default"));
        assert_eq!(market_model("marketeer"), None);
        assert_eq!(market_model("alice/market"), None);
    }
}
