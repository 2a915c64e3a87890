//! The composed libp2p behaviour.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, autonat, connection_limits, dcutr, gossipsub, identify, kad, mdns,
    memory_connection_limits, ping, relay,
};

use crate::NetConfig;
use crate::task::{MAX_GOSSIP_BYTES, PROTOCOL_VERSION};

/// Flurry's own DHT (not the IPFS one): only Flurry nodes are in its routing tables.
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/flurry/kad/1.0.0");

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) memory: memory_connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) autonat: autonat::Behaviour,
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) relay_server: Toggle<relay::Behaviour>,
    pub(crate) dcutr: Toggle<dcutr::Behaviour>,
    pub(crate) stream: libp2p_stream::Behaviour,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Behaviour {
    pub(crate) fn new(
        key: &Keypair,
        relay_client: relay::client::Behaviour,
        config: &NetConfig,
    ) -> Result<Self, BoxError> {
        let peer_id = key.public().to_peer_id();
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(config.max_connections_per_peer))
            .with_max_pending_incoming(Some(config.max_pending_incoming));

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config.set_query_timeout(Duration::from_secs(30));
        let kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);

        let gossip_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(Duration::from_secs(1))
            .max_transmit_size(MAX_GOSSIP_BYTES + 4096)
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .build()
            .map_err(|e| format!("gossipsub config: {e}"))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )?;
        gossipsub.with_peer_score(
            gossipsub::PeerScoreParams::default(),
            gossipsub::PeerScoreThresholds::default(),
        )?;

        let mdns = if config.mdns {
            Some(mdns::tokio::Behaviour::new(
                mdns::Config::default(),
                peer_id,
            )?)
        } else {
            None
        };
        let relay_server = config.relay_server.as_ref().map(|l| {
            relay::Behaviour::new(
                peer_id,
                relay::Config {
                    max_reservations: l.max_reservations,
                    max_reservations_per_peer: l.max_reservations_per_peer,
                    max_circuits: l.max_circuits,
                    max_circuits_per_peer: l.max_circuits_per_peer,
                    max_circuit_duration: l.max_circuit_duration,
                    max_circuit_bytes: l.max_circuit_bytes,
                    ..relay::Config::default()
                },
            )
        });
        Ok(Self {
            limits: connection_limits::Behaviour::new(limits),
            memory: memory_connection_limits::Behaviour::with_max_percentage(
                config.max_memory_fraction,
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(PROTOCOL_VERSION.into(), key.public())
                    .with_agent_version(format!("flurry/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15))),
            kad,
            mdns: mdns.into(),
            gossipsub,
            autonat: autonat::Behaviour::new(
                peer_id,
                autonat::Config {
                    only_global_ips: config.autonat_global_only,
                    // Probe soon after start and again every minute, so a node learns
                    // whether it is reachable (and Kademlia picks its mode) early.
                    boot_delay: Duration::from_secs(2),
                    retry_interval: Duration::from_secs(20),
                    refresh_interval: Duration::from_secs(60),
                    throttle_server_period: Duration::from_secs(5),
                    ..autonat::Config::default()
                },
            ),
            relay_client,
            relay_server: relay_server.into(),
            dcutr: config
                .hole_punching
                .then(|| dcutr::Behaviour::new(peer_id))
                .into(),
            stream: libp2p_stream::Behaviour::new(),
        })
    }
}
