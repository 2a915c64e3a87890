//! The task that owns the swarm: it answers commands and turns swarm events into
//! [`NetEvent`]s.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Swarm, autonat, gossipsub, identify, kad, mdns, noise, ping, relay, tcp,
    yamux,
};
use tokio::sync::{mpsc, oneshot};

use crate::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use crate::locate::{self, LocateRequest, LocateResponse};
use crate::{
    Allowed, Command, Error, GossipMessage, Nat, NetConfig, NetEvent, NetStatus, PeerInfo, Result,
    Validator, Verdict,
};

/// Gossipsub's graylist threshold (its default): below it a peer's messages are ignored,
/// and this node disconnects it.
const GRAYLIST: f64 = -80.0;

/// Score parameters of a validated topic: low-traffic topics (offers every 30 s) must
/// not penalise quiet honest peers, so only invalid messages count (P4), heavily: the
/// penalty is 20 × count² (the count decays by 1% a second), so two in a minute take a
/// peer to the graylist threshold. Honest nodes never send an invalid message: a
/// validator answers `Ignore`, not `Reject`, for what may be honest (stale, a newer
/// version).
fn strict_topic() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: 0.99,
        ..gossipsub::TopicScoreParams::default()
    }
}

/// Identify's protocol version: peers of another major version are not Flurry peers.
pub const PROTOCOL_VERSION: &str = "/flurry/1";
/// Largest gossip message a node publishes or accepts.
pub const MAX_GOSSIP_BYTES: usize = 64 * 1024;
/// Gossip messages kept per topic for [`crate::Net::gossip`].
const GOSSIP_KEPT: usize = 64;
/// Topics one node follows at most.
const MAX_TOPICS: usize = 32;

pub(crate) fn parse_addr(s: &str) -> Result<Multiaddr> {
    s.parse()
        .map_err(|e: libp2p::multiaddr::Error| Error::BadAddr {
            addr: s.to_string(),
            reason: e.to_string(),
        })
}

use crate::parse_peer;

fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

struct State {
    swarm: Swarm<Behaviour>,
    events: mpsc::Sender<NetEvent>,
    nat: Nat,
    relay_server: bool,
    conns: HashMap<PeerId, HashMap<ConnectionId, Multiaddr>>,
    rtt: HashMap<PeerId, Duration>,
    agents: HashMap<PeerId, String>,
    reservations: HashSet<PeerId>,
    finds: HashMap<kad::QueryId, Find>,
    provider_finds: HashMap<kad::QueryId, ProviderFind>,
    /// Peers cut off until the given time ([`crate::Net::ban`]).
    banned: HashMap<PeerId, Instant>,
    dropped_events: u64,
    allowed: Allowed,
    gossip: HashMap<String, VecDeque<GossipMessage>>,
    relays: Vec<Multiaddr>,
    bootstrap: Vec<Multiaddr>,
    mdns: bool,
    /// The circuit listener of each configured relay (index into `relays`).
    relay_listeners: HashMap<libp2p::core::transport::ListenerId, usize>,
    /// Per relay (peer id): which of its addresses to reserve on next.
    relay_turn: HashMap<String, usize>,
    /// The node key, which signs the peer records handed to rendezvous points.
    key: Keypair,
    control: libp2p_stream::Control,
    /// Per rendezvous point: the addresses last registered there, and when.
    registered: HashMap<PeerId, (Vec<Multiaddr>, Instant)>,
    /// Outcomes of registrations (the rendezvous point, whether it kept the record).
    registrations: (mpsc::Sender<Registered>, mpsc::Receiver<Registered>),
    /// Topics whose messages are judged before delivery.
    validators: HashMap<String, Validator>,
}

/// How often the node re-reserves on lost relays and re-dials bootstrap peers when it
/// has no connection.
const MAINTAIN_EVERY: Duration = Duration::from_secs(10);

type Find = (PeerId, oneshot::Sender<Result<Vec<String>>>);
type ProviderFind = (HashSet<PeerId>, oneshot::Sender<Result<Vec<String>>>);

/// A registration's outcome: the rendezvous point, and whether it kept the record.
type Registered = (PeerId, bool);

/// Builds the swarm, starts listening and dialling, and spawns the task. Returns the
/// local peer id and a control for streams.
pub(crate) async fn spawn(
    key: Keypair,
    config: NetConfig,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    allowed: Allowed,
) -> Result<(String, libp2p_stream::Control)> {
    let start = |e: &dyn std::fmt::Display| Error::Start(e.to_string());
    let listen: Vec<Multiaddr> = config
        .listen
        .iter()
        .map(|a| parse_addr(a))
        .collect::<Result<_>>()?;
    let bootstrap: Vec<Multiaddr> = config
        .bootstrap
        .iter()
        .map(|a| parse_addr(a))
        .collect::<Result<_>>()?;
    let relays: Vec<Multiaddr> = config
        .relays
        .iter()
        .map(|a| parse_addr(a))
        .collect::<Result<_>>()?;
    let external: Vec<Multiaddr> = config
        .external
        .iter()
        .map(|a| parse_addr(a))
        .collect::<Result<_>>()?;
    let idle = config.idle_timeout;
    let relay_server = config.relay_server.is_some();
    let signer = key.clone();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| start(&e))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| start(&e))?
        .with_behaviour(|key, relay_client| Behaviour::new(key, relay_client, &config))
        .map_err(|e| start(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    let peer_id = swarm.local_peer_id().to_string();
    let control = swarm.behaviour().stream.new_control();
    for a in listen {
        swarm
            .listen_on(a.clone())
            .map_err(|e| Error::Start(format!("cannot listen on {a}: {e}")))?;
    }
    for a in external {
        swarm.add_external_address(a);
    }
    for a in &bootstrap {
        if let Some(p) = peer_of(a) {
            swarm.behaviour_mut().kad.add_address(&p, a.clone());
        }
    }
    let mut state = State {
        swarm,
        events,
        nat: Nat::Unknown,
        relay_server,
        conns: HashMap::new(),
        rtt: HashMap::new(),
        agents: HashMap::new(),
        reservations: HashSet::new(),
        finds: HashMap::new(),
        provider_finds: HashMap::new(),
        banned: HashMap::new(),
        dropped_events: 0,
        allowed,
        gossip: HashMap::new(),
        relays,
        bootstrap,
        mdns: config.mdns,
        relay_listeners: HashMap::new(),
        relay_turn: HashMap::new(),
        key: signer,
        control: control.clone(),
        registered: HashMap::new(),
        registrations: mpsc::channel(16),
        validators: HashMap::new(),
    };
    state.maintain();
    tokio::spawn(run(state, commands));
    Ok((peer_id, control))
}

async fn run(mut st: State, mut commands: mpsc::Receiver<Command>) {
    let mut tick = tokio::time::interval(MAINTAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => st.maintain(),
            cmd = commands.recv() => match cmd {
                Some(c) => st.command(c),
                None => return,
            },
            ev = st.swarm.select_next_some() => st.swarm_event(ev),
            Some((point, kept)) = st.registrations.1.recv() => {
                if !kept {
                    // Registered again at the next maintenance tick.
                    st.registered.remove(&point);
                }
            }
        }
    }
}

impl State {
    /// Reserves on every configured relay that has no circuit listener, and dials the
    /// bootstrap peers again when no peer is connected (a network that split heals).
    fn maintain(&mut self) {
        // One reservation per relay: several addresses of the same relay (TCP and QUIC)
        // are tried in turn, not reserved on at once (a second reservation on the same
        // relay replaces the first).
        let relay_key =
            |i: usize, a: &Multiaddr| peer_of(a).map_or(format!("#{i}"), |p| p.to_string());
        let relays = self.relays.clone();
        let held: HashSet<String> = self
            .relay_listeners
            .values()
            .map(|&i| relay_key(i, &relays[i]))
            .collect();
        let mut tried = HashSet::new();
        for (i, r) in relays.iter().enumerate() {
            let key = relay_key(i, r);
            if held.contains(&key) || tried.contains(&key) {
                continue;
            }
            // The address after the one that failed last, among this relay's.
            let same: Vec<usize> = (0..relays.len())
                .filter(|&j| relay_key(j, &relays[j]) == key)
                .collect();
            let next = self.relay_turn.get(&key).copied().unwrap_or(0) % same.len();
            let j = same[next];
            tried.insert(key);
            match self
                .swarm
                .listen_on(relays[j].clone().with(Protocol::P2pCircuit))
            {
                Ok(id) => {
                    self.relay_listeners.insert(id, j);
                }
                Err(e) => tracing::warn!(relay = %relays[j], error = %e, "cannot reserve on relay"),
            }
        }
        self.register_record();
        // Peers graylisted by gossipsub (invalid messages on a validated topic) are
        // disconnected.
        let graylisted: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .copied()
            .filter(|p| {
                self.swarm
                    .behaviour()
                    .gossipsub
                    .peer_score(p)
                    .is_some_and(|s| s <= GRAYLIST)
            })
            .collect();
        for p in graylisted {
            tracing::warn!(peer = %p, "disconnecting a peer that sent invalid gossip");
            let _ = self.swarm.disconnect_peer_id(p);
        }
        if self.swarm.connected_peers().next().is_none() {
            for a in self.bootstrap.clone() {
                if let Err(e) = self.swarm.dial(a.clone()) {
                    tracing::debug!(addr = %a, error = %e, "cannot dial bootstrap peer");
                }
            }
        }
    }

    /// The rendezvous points: the bootstrap peers and relays (with an address each),
    /// this node excepted.
    fn rendezvous_points(&self) -> Vec<(PeerId, Multiaddr)> {
        let me = *self.swarm.local_peer_id();
        let mut out: Vec<(PeerId, Multiaddr)> = Vec::new();
        for a in self.bootstrap.iter().chain(&self.relays) {
            if let Some(p) = peer_of(a)
                && p != me
                && !out.iter().any(|(q, _)| *q == p)
            {
                out.push((p, a.clone()));
            }
        }
        out
    }

    /// Where this node can be dialled: confirmed external addresses, circuits through
    /// its relays, and the concrete addresses it listens on (a private network's peers
    /// reach those), sorted, at most [`locate::MAX_ADDRS`].
    fn reachable_addrs(&self) -> Vec<Multiaddr> {
        let me = *self.swarm.local_peer_id();
        let mut out: Vec<Multiaddr> = self
            .swarm
            .external_addresses()
            .chain(self.swarm.listeners())
            .filter(|a| {
                !a.iter().any(|p| {
                    matches!(p, Protocol::Ip4(ip) if ip.is_unspecified())
                        || matches!(p, Protocol::Ip6(ip) if ip.is_unspecified())
                })
            })
            .map(|a| {
                let mut a = a.clone();
                if a.iter().last() == Some(Protocol::P2p(me)) {
                    a.pop();
                }
                a
            })
            .collect();
        out.sort();
        out.dedup();
        out.truncate(locate::MAX_ADDRS);
        out
    }

    /// Hands this node's signed record to every connected rendezvous point that does not
    /// hold its current addresses (or got them more than [`locate::REREGISTER_EVERY`]
    /// ago).
    fn register_record(&mut self) {
        let addrs = self.reachable_addrs();
        if addrs.is_empty() {
            return;
        }
        for (point, _) in self.rendezvous_points() {
            if !self.swarm.is_connected(&point) {
                continue;
            }
            if let Some((a, at)) = self.registered.get(&point)
                && *a == addrs
                && at.elapsed() < locate::REREGISTER_EVERY
            {
                continue;
            }
            let record = match locate::sign_record(&self.key, addrs.clone()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot sign a peer record");
                    return;
                }
            };
            self.registered
                .insert(point, (addrs.clone(), Instant::now()));
            let mut control = self.control.clone();
            let done = self.registrations.0.clone();
            tokio::spawn(async move {
                let req = LocateRequest::Register {
                    record: hex::encode(record),
                };
                let kept = match locate::ask(&mut control, point, &req).await {
                    Ok(LocateResponse::Registered { .. }) => {
                        tracing::debug!(%point, "peer record registered");
                        true
                    }
                    Ok(other) => {
                        tracing::warn!(%point, answer = ?other, "a rendezvous point did not keep the peer record");
                        false
                    }
                    Err(e) => {
                        tracing::debug!(%point, error = %e, "registering the peer record failed");
                        false
                    }
                };
                let _ = done.try_send((point, kept));
            });
        }
    }

    fn emit(&mut self, ev: NetEvent) {
        if self.events.try_send(ev).is_err() {
            self.dropped_events += 1;
            if self.dropped_events.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped_events,
                    "network events dropped: the node is not reading them"
                );
            }
        }
    }

    fn status(&mut self) -> NetStatus {
        let routing_table = self
            .swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .map(|b| b.num_entries())
            .sum();
        let me = *self.swarm.local_peer_id();
        let mut relayed_addrs: Vec<String> = self
            .swarm
            .listeners()
            .chain(self.swarm.external_addresses())
            .filter(|a| is_relayed(a))
            .map(|a| {
                let mut a = a.clone();
                if !matches!(a.iter().last(), Some(Protocol::P2p(_))) {
                    a.push(Protocol::P2p(me));
                }
                a.to_string()
            })
            .collect();
        relayed_addrs.sort();
        relayed_addrs.dedup();
        let mut status = NetStatus {
            peer_id: me.to_string(),
            listen: self
                .swarm
                .listeners()
                .filter(|a| !is_relayed(a))
                .map(ToString::to_string)
                .collect(),
            external: self
                .swarm
                .external_addresses()
                .map(ToString::to_string)
                .collect(),
            nat: self.nat,
            reservations: self.reservations.iter().map(ToString::to_string).collect(),
            relayed_addrs,
            routing_table,
            connected: self.swarm.connected_peers().count(),
            relay_server: self.relay_server,
            diagnosis: Vec::new(),
        };
        status.diagnosis = crate::diagnose(
            &status,
            &crate::Setup {
                relays: self.relays.iter().map(ToString::to_string).collect(),
                bootstrap: self.bootstrap.len(),
                mdns: self.mdns,
            },
        );
        status
    }

    fn peers(&self) -> Vec<PeerInfo> {
        let mut out: Vec<PeerInfo> = self
            .conns
            .iter()
            .map(|(p, c)| {
                let addresses: Vec<String> = c.values().map(ToString::to_string).collect();
                PeerInfo {
                    name: self.allowed.read().ok().and_then(|a| a.get(p).cloned()),
                    peer_id: p.to_string(),
                    relayed: c.values().all(is_relayed),
                    addresses,
                    agent: self.agents.get(p).cloned(),
                    rtt_ms: self.rtt.get(p).map(|d| d.as_secs_f64() * 1e3),
                }
            })
            .collect();
        out.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        out
    }

    fn subscribe(&mut self, topic: &str) -> Result<()> {
        if self.gossip.contains_key(topic) {
            return Ok(());
        }
        if topic.is_empty() || topic.len() > 128 {
            return Err(Error::Gossip("a topic has 1 to 128 characters".into()));
        }
        if self.gossip.len() >= MAX_TOPICS {
            return Err(Error::Gossip(format!(
                "this node already follows {MAX_TOPICS} topics"
            )));
        }
        self.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&gossipsub::IdentTopic::new(topic))
            .map_err(|e| Error::Gossip(e.to_string()))?;
        self.gossip.insert(topic.to_string(), VecDeque::new());
        Ok(())
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Status(tx) => {
                let _ = tx.send(self.status());
            }
            Command::Peers(tx) => {
                let _ = tx.send(self.peers());
            }
            Command::Dial(addr, tx) => {
                let r = parse_addr(&addr).and_then(|a| {
                    self.swarm
                        .dial(a)
                        .map_err(|e| Error::Unreachable(format!("cannot dial {addr}: {e}")))
                });
                let _ = tx.send(r);
            }
            Command::SubscribeValidated(topic, validator, tx) => {
                let r = self.subscribe(&topic).and_then(|()| {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .set_topic_params(gossipsub::IdentTopic::new(&topic), strict_topic())
                        .map_err(|e| Error::Gossip(e.to_string()))
                });
                if r.is_ok() {
                    self.validators.insert(topic, validator);
                }
                let _ = tx.send(r);
            }
            Command::Subscribe(topic, tx) => {
                let _ = tx.send(self.subscribe(&topic));
            }
            Command::Gossip(topic, tx) => {
                let r = self.subscribe(&topic).map(|()| {
                    self.gossip
                        .get(&topic)
                        .map(|q| q.iter().cloned().collect())
                        .unwrap_or_default()
                });
                let _ = tx.send(r);
            }
            Command::Publish(topic, data, tx) => {
                let r = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(gossipsub::IdentTopic::new(topic), data)
                    .map(|_| ())
                    .map_err(|e| Error::Gossip(e.to_string()));
                let _ = tx.send(r);
            }
            Command::FindPeer(peer, tx) => match parse_peer(&peer) {
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
                Ok(p) => {
                    let q = self.swarm.behaviour_mut().kad.get_closest_peers(p);
                    self.finds.insert(q, (p, tx));
                }
            },
            Command::Ban(peer, how_long) => {
                if let Ok(p) = parse_peer(&peer) {
                    let now = Instant::now();
                    self.banned.retain(|_, until| *until > now);
                    if self.banned.len() < crate::MAX_BANNED || self.banned.contains_key(&p) {
                        self.banned.insert(p, now + how_long);
                        tracing::warn!(peer = %p, secs = how_long.as_secs(), "banning a peer");
                        let _ = self.swarm.disconnect_peer_id(p);
                    }
                }
            }
            Command::Provide(key, tx) => {
                let r = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .start_providing(kad::RecordKey::new(&key))
                    .map(|_| ())
                    .map_err(|e| Error::Unreachable(format!("cannot provide: {e}")));
                let _ = tx.send(r);
            }
            Command::Providers(key, tx) => {
                let q = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(kad::RecordKey::new(&key));
                self.provider_finds.insert(q, (HashSet::new(), tx));
            }
            Command::Rendezvous(tx) => {
                let _ = tx.send(self.rendezvous_points());
            }
            Command::Bootstrap(tx) => {
                let r = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .bootstrap()
                    .map(|_| ())
                    .map_err(|e| {
                        Error::Unreachable(format!("no known peer to bootstrap from: {e}"))
                    });
                let _ = tx.send(r);
            }
        }
    }

    fn swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening (p2p)");
                // A relay hands its own addresses to the peers that reserve on it, so it
                // announces what it listens on (the operator chose those addresses).
                let concrete = !address.iter().any(|p| {
                    matches!(p, Protocol::Ip4(ip) if ip.is_unspecified())
                        || matches!(p, Protocol::Ip6(ip) if ip.is_unspecified())
                });
                if self.relay_server && concrete && !is_relayed(&address) {
                    self.swarm.add_external_address(address.clone());
                }
                self.emit(NetEvent::Listening(address.to_string()));
                self.register_record();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if self
                    .banned
                    .get(&peer_id)
                    .is_some_and(|until| Instant::now() < *until)
                {
                    tracing::debug!(%peer_id, "a banned peer connected; closing");
                    let _ = self.swarm.close_connection(connection_id);
                    return;
                }
                // An inbound relayed connection's remote address is just `/p2p/PEER`: show
                // the circuit it came through instead, so that it reads as relayed.
                let addr = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => address.clone(),
                    ConnectedPoint::Listener {
                        local_addr,
                        send_back_addr,
                    } => {
                        if endpoint.is_relayed() {
                            local_addr.clone()
                        } else {
                            send_back_addr.clone()
                        }
                    }
                };
                self.conns
                    .entry(peer_id)
                    .or_default()
                    .insert(connection_id, addr.clone());
                if num_established.get() == 1
                    && self.rendezvous_points().iter().any(|(p, _)| *p == peer_id)
                {
                    self.register_record();
                }
                if num_established.get() == 1 {
                    self.emit(NetEvent::Connected {
                        peer_id: peer_id.to_string(),
                        relayed: is_relayed(&addr),
                        address: addr.to_string(),
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(%peer_id, ?cause, "connection closed");
                if let Some(c) = self.conns.get_mut(&peer_id) {
                    c.remove(&connection_id);
                }
                if num_established == 0 {
                    self.reservations.remove(&peer_id);
                    self.conns.remove(&peer_id);
                    self.rtt.remove(&peer_id);
                    self.emit(NetEvent::Disconnected {
                        peer_id: peer_id.to_string(),
                    });
                }
            }
            SwarmEvent::Behaviour(b) => self.behaviour_event(b),
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                if let Some(i) = self.relay_listeners.remove(&listener_id) {
                    tracing::info!(relay = %self.relays[i], "relay reservation ended; will reserve again");
                    if let Some(p) = peer_of(&self.relays[i]) {
                        self.reservations.remove(&p);
                        *self.relay_turn.entry(p.to_string()).or_default() += 1;
                    }
                }
                if let Err(e) = reason {
                    tracing::warn!(?addresses, error = %e, "a listener closed");
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::info!(peer = ?peer_id, %error, "dial failed");
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "listener error");
            }
            _ => {}
        }
    }

    fn behaviour_event(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocol_version != PROTOCOL_VERSION {
                    tracing::debug!(%peer_id, version = %info.protocol_version, "not a Flurry peer");
                    return;
                }
                self.agents.insert(peer_id, info.agent_version.clone());
                if info.protocols.contains(&KAD_PROTOCOL) {
                    for a in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, a);
                    }
                }
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                self.rtt.insert(peer, rtt);
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                // Topic validation: a size bound, and a signed author (Strict mode already
                // checked the signature).
                let well_formed =
                    message.data.len() <= MAX_GOSSIP_BYTES && message.source.is_some();
                let judged = if well_formed {
                    let author = message.source.map(|p| p.to_string());
                    self.validators
                        .get(message.topic.as_str())
                        .map_or(Verdict::Accept, |v| v(author.as_deref(), &message.data))
                } else {
                    Verdict::Reject
                };
                let ok = judged == Verdict::Accept;
                let verdict = match judged {
                    Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                    Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                    Verdict::Reject => {
                        tracing::debug!(peer = %propagation_source, topic = %message.topic, "invalid gossip message rejected");
                        gossipsub::MessageAcceptance::Reject
                    }
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
                if judged == Verdict::Reject
                    && self
                        .swarm
                        .behaviour()
                        .gossipsub
                        .peer_score(&propagation_source)
                        .is_some_and(|s| s <= GRAYLIST)
                {
                    tracing::warn!(peer = %propagation_source, "disconnecting a peer that sent invalid gossip");
                    let _ = self.swarm.disconnect_peer_id(propagation_source);
                }
                if ok {
                    let topic = message.topic.to_string();
                    if let Some(q) = self.gossip.get_mut(&topic) {
                        if q.len() >= GOSSIP_KEPT {
                            q.pop_front();
                        }
                        q.push_back(GossipMessage {
                            topic: topic.clone(),
                            source: message.source.map(|p| p.to_string()),
                            text: String::from_utf8_lossy(&message.data).into_owned(),
                        });
                    }
                    self.emit(NetEvent::Gossip {
                        topic: message.topic.to_string(),
                        source: message.source.map(|p| p.to_string()),
                        data: message.data,
                    });
                }
            }
            BehaviourEvent::Autonat(autonat::Event::StatusChanged { new, .. }) => {
                let (nat, mode) = match new {
                    autonat::NatStatus::Public(_) => (Nat::Public, Some(kad::Mode::Server)),
                    autonat::NatStatus::Private => (Nat::Private, Some(kad::Mode::Client)),
                    autonat::NatStatus::Unknown => (Nat::Unknown, None),
                };
                self.swarm.behaviour_mut().kad.set_mode(mode);
                self.nat = nat;
                tracing::info!(?nat, "reachability");
                self.emit(NetEvent::Nat(nat));
            }
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                ..
            }) => {
                self.reservations.insert(relay_peer_id);
                self.register_record();
                self.emit(NetEvent::Reserved {
                    relay: relay_peer_id.to_string(),
                });
            }
            BehaviourEvent::RelayServer(e) => tracing::debug!(event = ?e, "relay server"),
            BehaviourEvent::Dcutr(libp2p::dcutr::Event {
                remote_peer_id,
                result,
            }) => match result {
                Ok(_) => self.emit(NetEvent::HolePunched {
                    peer_id: remote_peer_id.to_string(),
                }),
                Err(e) => {
                    tracing::info!(peer = %remote_peer_id, error = %e, "hole punching failed; staying relayed")
                }
            },
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(r),
                step,
                ..
            }) => {
                let Some((found, _)) = self.provider_finds.get_mut(&id) else {
                    return;
                };
                if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = r {
                    found.extend(providers.into_iter().take(crate::MAX_PROVIDERS));
                }
                if step.last || found.len() >= crate::MAX_PROVIDERS {
                    if let Some((found, tx)) = self.provider_finds.remove(&id) {
                        let mut list: Vec<String> = found.iter().map(ToString::to_string).collect();
                        list.sort();
                        list.truncate(crate::MAX_PROVIDERS);
                        let _ = tx.send(Ok(list));
                    }
                    if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                        q.finish();
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetClosestPeers(r),
                step,
                ..
            }) => {
                let Some((target, _)) = self.finds.get(&id) else {
                    return;
                };
                let target = *target;
                let found: Vec<String> = match &r {
                    Ok(ok) => ok
                        .peers
                        .iter()
                        .filter(|p| p.peer_id == target)
                        .flat_map(|p| p.addrs.iter().map(ToString::to_string))
                        .collect(),
                    Err(_) => Vec::new(),
                };
                if !found.is_empty() || step.last {
                    if let Some((_, tx)) = self.finds.remove(&id) {
                        let _ = tx.send(if found.is_empty() {
                            Err(Error::Unreachable("the DHT does not list it".to_string()))
                        } else {
                            Ok(found)
                        });
                    }
                    if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                        q.finish();
                    }
                }
            }
            _ => {}
        }
    }
}
