//! Which contracts live on which chain: `$FLURRY_HOME/chain/deployments.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::client::Contracts;
use crate::{Error, Result, write_atomic};

/// One deployment of the three contracts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Hash of the chain's block 0 (a reset dev chain has another one).
    pub genesis: B256,
    /// The contracts.
    pub contracts: Contracts,
    /// Who deployed them.
    pub deployer: Address,
    /// Unix seconds of the deployment.
    pub deployed_at: u64,
}

/// The deployments this node knows, keyed by chain id and genesis hash. Written
/// atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployments {
    /// `"<chain id>:<genesis hash>"` → deployment.
    pub chains: BTreeMap<String, Deployment>,
}

fn key(chain_id: u64, genesis: B256) -> String {
    format!("{chain_id}:{genesis}")
}

impl Deployments {
    /// `dir/deployments.json`.
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("deployments.json")
    }

    /// Reads the file; a missing file is empty.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| Error::BadFile {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).unwrap_or_default();
        write_atomic(path, json.as_bytes())
    }

    /// The deployment on this chain, if any.
    pub fn get(&self, chain_id: u64, genesis: B256) -> Option<&Deployment> {
        self.chains.get(&key(chain_id, genesis))
    }

    /// Records a deployment (replacing an older one on the same chain).
    pub fn insert(&mut self, d: Deployment) {
        self.chains.insert(key(d.chain_id, d.genesis), d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keys_by_genesis() {
        let dir = tempfile::tempdir().unwrap();
        let path = Deployments::file(dir.path());
        assert_eq!(Deployments::load(&path).unwrap(), Deployments::default());
        let d = Deployment {
            chain_id: 31337,
            genesis: B256::repeat_byte(7),
            contracts: Contracts {
                ticket_broker: Address::repeat_byte(1),
                provider_registry: Address::repeat_byte(2),
                model_registry: Address::repeat_byte(3),
            },
            deployer: Address::repeat_byte(4),
            deployed_at: 1,
        };
        let mut all = Deployments::default();
        all.insert(d.clone());
        all.save(&path).unwrap();
        let back = Deployments::load(&path).unwrap();
        assert_eq!(back.get(31337, B256::repeat_byte(7)), Some(&d));
        // The same chain id after a reset (another genesis) has no deployment.
        assert_eq!(back.get(31337, B256::repeat_byte(8)), None);
        std::fs::write(&path, "{not json").unwrap();
        let err = Deployments::load(&path).unwrap_err().to_string();
        assert!(err.contains("deployments.json"), "{err}");
    }
}
