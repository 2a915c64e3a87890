//! What may leave the node, for which destination.

use serde::{Deserialize, Serialize};

/// Where a request would go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// This node's own engine: nothing leaves.
    Local,
    /// A member of the owner's trusted circle.
    Circle,
    /// A stranger selling inference on the open market.
    Market,
}

/// The owner's rule for a destination (`[privacy]` in `flurry.toml`).
pub use flurry_config::PrivacyRule as Rule;

/// A request's own wish (`"privacy"` in the API), which can only tighten the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Override {
    /// Never leaves the node.
    LocalOnly,
    /// May leave only scrubbed.
    Scrubbed,
}

/// What happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// It runs here.
    Local,
    /// It may not go where it was sent (the caller says why and what to change).
    Refused,
    /// It goes, scrubbed.
    SendScrubbed,
    /// It goes as typed.
    SendAsIs,
}

/// Decides what happens to a request for `to` under `rule`, tightened by `wish`.
pub fn decide(to: Destination, rule: Rule, wish: Option<Override>) -> Decision {
    if to == Destination::Local {
        return Decision::Local;
    }
    match (rule, wish) {
        (_, Some(Override::LocalOnly)) | (Rule::Never, _) => Decision::Refused,
        (Rule::Scrubbed, _) | (Rule::AsIs, Some(Override::Scrubbed)) => Decision::SendScrubbed,
        (Rule::AsIs, None) => Decision::SendAsIs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wish_only_tightens() {
        use Decision::*;
        use Destination::*;
        assert_eq!(
            decide(Destination::Local, Rule::Never, None),
            Decision::Local
        );
        assert_eq!(decide(Circle, Rule::AsIs, None), SendAsIs);
        assert_eq!(
            decide(Circle, Rule::AsIs, Some(Override::Scrubbed)),
            SendScrubbed
        );
        assert_eq!(
            decide(Circle, Rule::AsIs, Some(Override::LocalOnly)),
            Refused
        );
        assert_eq!(decide(Market, Rule::Scrubbed, None), SendScrubbed);
        assert_eq!(
            decide(Market, Rule::Never, Some(Override::Scrubbed)),
            Refused
        );
        assert_eq!(
            decide(Market, Rule::Scrubbed, Some(Override::LocalOnly)),
            Refused
        );
    }
}
