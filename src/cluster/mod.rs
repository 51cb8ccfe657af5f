//! Cluster mode: this node among others that share budgets, dedup claims,
//! frequency, campaign changes and audience updates through one Redis.
//!
//! A node joins with [`Node::join`]: it connects (the connection manager
//! reconnects by itself), checks that the cluster signs tracking URLs with
//! the same key (a node with another key would refuse every other node's
//! notices, so it refuses to join), and registers its id. Everything else
//! builds on the [`Node`] handle. Nothing here is on the bid path: the bid
//! path reads local copies that background tasks keep current.
//!
//! Keys are prefixed `bullseye:` so that one Redis can hold other data too;
//! [`Node::key`] builds them.
//!
//! - [`leases`]: budget leases (every budget-like limit handed out to the
//!   nodes in slices, renewed in the background).

pub mod leases;

pub mod replication;

use std::sync::atomic::{AtomicU64, Ordering};

pub mod claims;

pub use claims::Shared;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};

/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a command may wait for its answer before it fails (a paused or
/// unreachable Redis must not hold a notice, let alone a bid).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long joining may take before the node gives up starting.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How a node joins: the Redis URL and the node's stable id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `redis://`, `rediss://` or `redis+unix://` URL.
    pub redis_url: String,
    /// This node's stable id (ledger provenance, leases).
    pub node_id: String,
}

/// Why a node could not join.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The URL is not a Redis URL.
    #[error("redis URL {url}: {source}")]
    Url {
        /// The URL, without its password.
        url: String,
        /// What the client said.
        source: redis::RedisError,
    },
    /// Redis did not answer in time while joining.
    #[error("redis at {url} did not answer within 10 s")]
    Unreachable {
        /// The URL, without its password.
        url: String,
    },
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The cluster signs tracking URLs with another key.
    #[error(
        "this node's URL-signing key (fingerprint {ours}) differs from the cluster's ({cluster}): \
         every node must share the current signing key"
    )]
    SigningKey {
        /// This node's fingerprint.
        ours: String,
        /// The cluster's.
        cluster: String,
    },
    /// No usable node id.
    #[error("node id: {0}")]
    NodeId(String),
}

/// What Redis round trips were for, counted per purpose
/// (`bullseye_redis_round_trips_total{purpose}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Joining and membership.
    Membership,
    /// Exactly-once claims of notices, pixels, clicks and conversions.
    Claim,
    /// Budget leases.
    Lease,
    /// Events published to or read from the other nodes.
    Events,
    /// Campaign and audience changes.
    Control,
}

impl Purpose {
    /// Every purpose, in metric order.
    pub const ALL: [Purpose; 5] = [
        Purpose::Membership,
        Purpose::Claim,
        Purpose::Lease,
        Purpose::Events,
        Purpose::Control,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Purpose::Membership => "membership",
            Purpose::Claim => "claim",
            Purpose::Lease => "lease",
            Purpose::Events => "events",
            Purpose::Control => "control",
        }
    }
}

/// This node's handle on the cluster.
pub struct Node {
    /// The node's stable id.
    pub id: String,
    /// A short tag derived from the id (8 hex digits).
    pub tag: String,
    /// Where keys live (`bullseye:`).
    prefix: String,
    redis: ConnectionManager,
    /// For dedicated connections (blocking reads).
    client: redis::Client,
    round_trips: [AtomicU64; Purpose::ALL.len()],
    /// What replication has published, applied and failed so far.
    pub replication: std::sync::Arc<replication::ReplicationStats>,
}

/// The key fingerprint stored in the cluster: the first 16 hex digits of
/// SHA-256 over a fixed label and the key (the key itself never leaves the
/// node).
pub fn fingerprint(signing_key: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"bullseye signing-key fingerprint\0");
    hash.update(signing_key);
    hex16(&hash.finalize())
}

/// The 8-hex-digit tag of a node id.
pub fn node_tag(node_id: &str) -> String {
    let hash = Sha256::digest(node_id.as_bytes());
    hex16(&hash)[..8].to_string()
}

fn hex16(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(16);
    for b in &bytes[..8] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The default node id: the host name and the exchange port. Port 0 (a
/// port picked at start) gives no stable id, so it is refused.
pub fn default_node_id(port: u16) -> Result<String, ClusterError> {
    if port == 0 {
        return Err(ClusterError::NodeId(
            "listening on port 0 in cluster mode needs --node-id (the id must be stable across restarts)".into(),
        ));
    }
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ClusterError::NodeId("the host name is unknown: pass --node-id".into()))?;
    Ok(format!("{host}:{port}"))
}

/// Checks a node id given by the operator: 1–64 characters, letters,
/// digits and `.:_-` (it appears in keys, logs and ledger records).
pub fn check_node_id(id: &str) -> Result<(), ClusterError> {
    let fine = |c: char| c.is_ascii_alphanumeric() || ".:_-".contains(c);
    if id.is_empty() || id.len() > 64 || !id.chars().all(fine) {
        return Err(ClusterError::NodeId(format!(
            "{id:?}: 1 to 64 letters, digits, '.', ':', '_' or '-'"
        )));
    }
    Ok(())
}

/// A Redis URL with its password hidden, for messages and logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

impl Node {
    /// Connects to the cluster's Redis, checks the signing key's
    /// fingerprint against the cluster's (the first node sets it) and
    /// registers this node.
    pub async fn join(options: &ClusterOptions, signing_key: &[u8]) -> Result<Node, ClusterError> {
        check_node_id(&options.node_id)?;
        let client = redis::Client::open(options.redis_url.as_str()).map_err(|source| ClusterError::Url {
            url: redacted(&options.redis_url),
            source,
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_max_delay(Duration::from_secs(1));
        let redis = tokio::time::timeout(JOIN_TIMEOUT, ConnectionManager::new_with_config(client.clone(), config))
            .await
            .map_err(|_| ClusterError::Unreachable {
                url: redacted(&options.redis_url),
            })??;
        let node = Node {
            id: options.node_id.clone(),
            tag: node_tag(&options.node_id),
            prefix: "bullseye:".to_string(),
            redis,
            client,
            round_trips: Default::default(),
            replication: Default::default(),
        };
        let ours = fingerprint(signing_key);
        let mut redis = node.redis(Purpose::Membership);
        let (cluster,): (String,) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(node.key(&["signing-key"]))
            .arg(&ours)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(node.key(&["signing-key"]))
            .query_async(&mut redis)
            .await?;
        if cluster != ours {
            return Err(ClusterError::SigningKey { ours, cluster });
        }
        let _: () = redis::cmd("HSET")
            .arg(node.key(&["nodes"]))
            .arg(&node.id)
            .arg(&node.tag)
            .query_async(&mut redis)
            .await?;
        Ok(node)
    }

    /// A connection for one round trip (or one pipeline), counted under
    /// `purpose`. Cheap: the manager is a handle on one multiplexed
    /// connection.
    pub fn redis(&self, purpose: Purpose) -> ConnectionManager {
        self.round_trips[purpose as usize].fetch_add(1, Ordering::Relaxed);
        self.redis.clone()
    }

    /// A connection of its own, for commands that block (`XREAD BLOCK`):
    /// on the shared multiplexed connection they would hold up every other
    /// command behind them. Its round trips are counted with
    /// [`Node::count_round_trip`].
    pub async fn dedicated(&self) -> Result<redis::aio::MultiplexedConnection, ClusterError> {
        Ok(self.client.get_multiplexed_async_connection().await?)
    }

    /// Counts one round trip made on a dedicated connection.
    pub fn count_round_trip(&self, purpose: Purpose) {
        self.round_trips[purpose as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Round trips made so far for `purpose`.
    pub fn round_trips(&self, purpose: Purpose) -> u64 {
        self.round_trips[purpose as usize].load(Ordering::Relaxed)
    }

    /// The key `bullseye:<part>:<part>…`.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key.push(':');
            }
            key.push_str(part);
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_checked_and_port_zero_has_none() {
        assert!(check_node_id("bidder-1.eu:8080").is_ok());
        assert!(check_node_id("").is_err());
        assert!(check_node_id("a b").is_err());
        assert!(check_node_id(&"x".repeat(65)).is_err());
        assert!(matches!(default_node_id(0), Err(ClusterError::NodeId(_))));
    }

    #[test]
    fn fingerprints_and_tags_are_stable_and_short() {
        assert_eq!(fingerprint(b"k").len(), 16);
        assert_eq!(fingerprint(b"k"), fingerprint(b"k"));
        assert_ne!(fingerprint(b"k"), fingerprint(b"l"));
        assert_eq!(node_tag("a").len(), 8);
        assert_eq!(redacted("redis://user:pw@host:6379/0"), "redis://***@host:6379/0");
        assert_eq!(redacted("redis://host:6379"), "redis://host:6379");
    }
}
