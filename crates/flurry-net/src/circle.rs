//! The trusted circle: peers this node lets run inference on it, with a short name for
//! each (`alice`) and, optionally, addresses to reach them by. Kept in
//! `$FLURRY_HOME/circle.json`, written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Longest member name.
pub const MAX_NAME: usize = 32;
/// Most members.
pub const MAX_MEMBERS: usize = 1024;
/// Most addresses kept per member.
pub const MAX_ADDRS: usize = 8;

/// One trusted peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its peer id.
    pub peer_id: String,
    /// Its short name, unique in the circle.
    pub name: String,
    /// Where to reach it (multiaddresses), if known.
    #[serde(default)]
    pub addrs: Vec<String>,
}

/// The circle file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Circle {
    /// Its members, in the order they were added.
    pub members: Vec<Member>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphabetic()
}

impl Circle {
    /// Reads the circle at `path`; a missing file is an empty circle.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::Circle(format!(
                    "{} is not a valid circle file ({e}); fix or remove it",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::Circle(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Writes the circle to `path` atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |e: std::io::Error| Error::Circle(format!("cannot write {}: {e}", path.display()));
        let tmp: PathBuf = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Adds `peer_id` (or updates its name and addresses). The name defaults to the last
    /// 8 characters of the peer id, lowercased.
    pub fn add(&mut self, peer_id: &str, name: Option<&str>, addrs: &[String]) -> Result<&Member> {
        let id: PeerId = peer_id
            .parse()
            .map_err(|_| Error::BadPeerId(peer_id.to_string()))?;
        let peer_id = id.to_string();
        let name = match name {
            Some(n) => n.to_string(),
            None => format!("peer-{}", &peer_id[peer_id.len() - 8..]).to_ascii_lowercase(),
        };
        if !valid_name(&name) {
            return Err(Error::Circle(format!(
                "invalid name {name:?}: use 1 to {MAX_NAME} lowercase letters, digits, '-' or '_', starting with a letter"
            )));
        }
        if addrs.len() > MAX_ADDRS {
            return Err(Error::Circle(format!(
                "at most {MAX_ADDRS} addresses per peer"
            )));
        }
        for a in addrs {
            crate::task::parse_addr(a)?;
        }
        if let Some(other) = self
            .members
            .iter()
            .find(|m| m.name == name && m.peer_id != peer_id)
        {
            return Err(Error::Circle(format!(
                "the name {name:?} is taken by {}; choose another with --name",
                other.peer_id
            )));
        }
        let i = match self.members.iter().position(|m| m.peer_id == peer_id) {
            Some(i) => {
                let m = &mut self.members[i];
                m.name = name;
                if !addrs.is_empty() {
                    m.addrs = addrs.to_vec();
                }
                i
            }
            None => {
                if self.members.len() >= MAX_MEMBERS {
                    return Err(Error::Circle(format!(
                        "the circle is full ({MAX_MEMBERS} members)"
                    )));
                }
                self.members.push(Member {
                    peer_id,
                    name,
                    addrs: addrs.to_vec(),
                });
                self.members.len() - 1
            }
        };
        Ok(&self.members[i])
    }

    /// The member named `key` or with peer id `key`.
    pub fn find(&self, key: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.name == key || m.peer_id == key)
    }

    /// Removes the member named `key` or with peer id `key`.
    pub fn remove(&mut self, key: &str) -> Option<Member> {
        let i = self
            .members
            .iter()
            .position(|m| m.name == key || m.peer_id == key)?;
        Some(self.members.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> String {
        libp2p::identity::Keypair::generate_secp256k1()
            .public()
            .to_peer_id()
            .to_string()
    }

    #[test]
    fn add_find_remove_and_persist() {
        let dir = std::env::temp_dir().join(format!("flurry-circle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("circle.json");
        let _ = std::fs::remove_file(&path);
        let mut c = Circle::load(&path).unwrap();
        assert!(c.members.is_empty());
        let (a, b) = (peer(), peer());
        c.add(&a, Some("alice"), &[]).unwrap();
        c.add(&b, None, &["/ip4/10.0.0.1/tcp/4001".into()]).unwrap();
        assert!(c.find(&b).unwrap().name.starts_with("peer-"));
        // A name belongs to one peer.
        let err = c.add(&b, Some("alice"), &[]).unwrap_err().to_string();
        assert!(err.contains("taken"), "{err}");
        // Bad input.
        assert!(c.add("not-a-peer", Some("x"), &[]).is_err());
        assert!(c.add(&b, Some("Bob!"), &[]).is_err());
        assert!(c.add(&b, Some("bob"), &["garbage".into()]).is_err());
        c.add(&b, Some("bob"), &[]).unwrap();
        assert_eq!(c.members.len(), 2);
        assert_eq!(c.find("bob").unwrap().addrs, vec!["/ip4/10.0.0.1/tcp/4001"]);
        c.save(&path).unwrap();
        let mut back = Circle::load(&path).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.remove("alice").unwrap().peer_id, a);
        assert!(back.find(&a).is_none());
        assert!(back.remove("alice").is_none());
        std::fs::write(&path, "{not json").unwrap();
        assert!(
            Circle::load(&path)
                .unwrap_err()
                .to_string()
                .contains("not a valid circle file")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
