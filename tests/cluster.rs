//! Cluster mode (issue 12): nodes sharing state through a real Redis,
//! started by the tests on an ephemeral port.

mod common;

use std::sync::Arc;

use bullseye::clock::SystemClock;
use common::*;

/// The test settings with another URL-signing key.
fn settings_with_key(signing_key: &str) -> String {
    TEST_SETTINGS.replace("test-signing-key-0123456789abcdefghijkl", signing_key)
}

/// A node joins; a node whose signing key differs from the cluster's is
/// refused; port 0 without a node id has no stable id and is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_signing_key_is_refused() {
    let redis = RedisServer::start();
    let config = write_config(TEST_SETTINGS, &large_budget(), "user-1,sports\n");
    let data = tempfile::tempdir().unwrap();
    let node = spawn_node(
        config.path(),
        data.path(),
        &redis.url(),
        "node-a",
        Arc::new(SystemClock),
    )
    .await;
    assert_eq!(
        redis.command(&["HGET", "bullseye:nodes", "node-a"]).map(|t| t.len()),
        Some(8)
    );

    let other = write_config(
        &settings_with_key("another-signing-key-0123456789abcdef0000"),
        &large_budget(),
        "user-1,sports\n",
    );
    let other_data = tempfile::tempdir().unwrap();
    let options = bullseye::server::ServeOptions {
        config_dir: other.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: other_data.path().to_path_buf(),
        segments: None,
        clock: Arc::new(SystemClock),
        watch: false,
        allow_dev_secrets: false,
        redis_url: Some(redis.url()),
        node_id: Some("node-b".into()),
    };
    match bullseye::server::start(options).await {
        Err(bullseye::server::StartError::Cluster(bullseye::cluster::ClusterError::SigningKey { .. })) => {}
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a node with another signing key joined"),
    }

    let options = bullseye::server::ServeOptions {
        config_dir: config.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: other_data.path().to_path_buf(),
        segments: None,
        clock: Arc::new(SystemClock),
        watch: false,
        allow_dev_secrets: false,
        redis_url: Some(redis.url()),
        node_id: None,
    };
    match bullseye::server::start(options).await {
        Err(bullseye::server::StartError::Cluster(bullseye::cluster::ClusterError::NodeId(_))) => {}
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("port 0 without a node id joined"),
    }
    node.stop().await;
}

/// A node asked to join a Redis that is not there refuses to start, with
/// the reason, rather than serving alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_redis_is_unreachable_does_not_start() {
    let config = write_config(TEST_SETTINGS, &large_budget(), "user-1,sports\n");
    let data = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = bullseye::server::ServeOptions {
        config_dir: config.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_path_buf(),
        segments: None,
        clock: Arc::new(SystemClock),
        watch: false,
        allow_dev_secrets: false,
        redis_url: Some(format!("redis://127.0.0.1:{closed}/0")),
        node_id: Some("node-a".into()),
    };
    match bullseye::server::start(options).await {
        Err(bullseye::server::StartError::Cluster(
            bullseye::cluster::ClusterError::Redis(_) | bullseye::cluster::ClusterError::Unreachable { .. },
        )) => {}
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("started without its Redis"),
    }
}
