//! The node's network handle and its trusted circle.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use flurry_net::{Circle, GossipMessage, Member, Net};

use crate::Error;

/// Most gossip topics the API subscribes to.
const MAX_TOPICS: usize = 64;

/// The node's network and its circle.
#[derive(Debug)]
pub struct P2p {
    /// The swarm.
    pub net: Net,
    /// The trusted circle, as in `circle_file`.
    pub circle: Mutex<Circle>,
    /// `$FLURRY_HOME/circle.json`.
    pub circle_file: PathBuf,
    /// Gossip topics subscribed through the API (`GET /api/net/gossip` reads only these).
    subscribed: Mutex<HashSet<String>>,
}

impl P2p {
    /// Loads the circle from `circle_file` and gives it to the swarm.
    pub fn new(net: Net, circle_file: PathBuf) -> Result<Self, flurry_net::Error> {
        let circle = Circle::load(&circle_file)?;
        net.set_circle(&circle.members);
        Ok(Self {
            net,
            circle: Mutex::new(circle),
            circle_file,
            subscribed: Mutex::default(),
        })
    }

    /// The circle's members.
    pub fn members(&self) -> Vec<Member> {
        self.circle
            .lock()
            .map(|c| c.members.clone())
            .unwrap_or_default()
    }

    /// Adds (or updates) a member, saves the circle and gives it to the swarm.
    pub fn add_member(
        &self,
        peer_id: &str,
        name: Option<&str>,
        addrs: &[String],
    ) -> Result<Member, Error> {
        let mut c = self.circle.lock().map_err(|_| Error::CirclePoisoned)?;
        let mut next = c.clone();
        let member = next.add(peer_id, name, addrs)?.clone();
        self.save(&next)?;
        *c = next;
        Ok(member)
    }

    /// Removes the member with this name or peer id, saves the circle and gives it to
    /// the swarm; `None` when there is none.
    pub fn remove_member(&self, key: &str) -> Result<Option<Member>, Error> {
        let mut c = self.circle.lock().map_err(|_| Error::CirclePoisoned)?;
        let mut next = c.clone();
        let Some(m) = next.remove(key) else {
            return Ok(None);
        };
        self.save(&next)?;
        *c = next;
        Ok(Some(m))
    }

    fn save(&self, c: &Circle) -> Result<(), Error> {
        c.save(&self.circle_file).map_err(Error::CircleSave)?;
        self.net.set_circle(&c.members);
        Ok(())
    }

    /// Whether `topic` was subscribed through [`P2p::join`].
    pub fn is_subscribed(&self, topic: &str) -> bool {
        self.subscribed.lock().is_ok_and(|s| s.contains(topic))
    }

    /// Subscribes to `topic` (once) and returns its last messages.
    pub async fn join(&self, topic: &str) -> Result<Vec<GossipMessage>, Error> {
        {
            let mut s = self.subscribed.lock().unwrap_or_else(|p| p.into_inner());
            if !s.contains(topic) && s.len() >= MAX_TOPICS {
                return Err(Error::TooManyTopics(MAX_TOPICS));
            }
            s.insert(topic.to_string());
        }
        Ok(self.net.gossip(topic).await?)
    }
}
