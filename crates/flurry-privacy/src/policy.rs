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

/// Where the owner's policy is read from.
#[derive(Debug, Clone)]
pub enum PolicySource {
    /// A fixed policy (tests, or a node without a config file).
    Fixed(flurry_config::PrivacySection),
    /// `[privacy]` of this config file, read again at every request, so that a change in
    /// the web UI or the file applies to the next request (a missing file: defaults).
    ConfigFile(std::path::PathBuf),
}

impl Default for PolicySource {
    fn default() -> Self {
        Self::Fixed(flurry_config::PrivacySection::default())
    }
}

impl PolicySource {
    /// The policy now. A config file that cannot be read or parsed is an error: a
    /// request never leaves under a policy nobody wrote.
    pub fn current(&self) -> Result<flurry_config::PrivacySection, String> {
        match self {
            Self::Fixed(p) => Ok(p.clone()),
            Self::ConfigFile(path) => flurry_config::FileConfig::load(path)
                .map(|c| c.privacy)
                .map_err(|e| e.to_string()),
        }
    }

    /// The rule for `to` now (`Local` has none: it never leaves).
    pub fn rule(&self, to: Destination) -> Result<Rule, String> {
        let p = self.current()?;
        Ok(match to {
            Destination::Local => Rule::AsIs,
            Destination::Circle => p.circle,
            Destination::Market => p.market,
        })
    }
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
