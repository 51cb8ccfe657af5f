//! The HTTP listeners: accept, limits, routing, graceful shutdown.
//!
//! Two listeners. The exchange listener (`--listen`) serves the bid path,
//! tracking and health, and nothing else; the admin listener
//! (`--admin-listen`) serves the admin API, the console, metrics and
//! health, on a task of the main runtime, so that neither competes with
//! the other's limits. The exchange listener runs one hyper HTTP/1.1
//! server on one thread per core: each thread has its own listener on the
//! port (SO_REUSEPORT, the kernel spreads connections) and a single-threaded
//! runtime, so a connection's requests never hop threads and no worker wakes
//! another (+16 % throughput over a shared multi-threaded runtime,
//! PERFORMANCE.md). Each accepted socket gets TCP_NODELAY (or Nagle plus
//! delayed ACKs add ~40 ms); one semaphore caps connections across threads;
//! hyper's timer bounds the time to send headers (and so idle keep-alive
//! time); bodies are limited in [`body`]. On shutdown the listeners close,
//! in-flight requests finish (for at most [`DRAIN_TIMEOUT`]), then
//! [`Running::shutdown`] returns.

pub mod admission;
pub mod body;
pub mod routes;
pub mod sync;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crate::app::App;
use crate::app::{AppOptions, BuildError};
use crate::clock::Clock;
use crate::config::ConfigErrors;
use crate::console::Console;
use crate::reload::Reloader;
use admission::{Admission, Refusal, Ticket};

/// Longest wait for in-flight requests at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What [`start`] needs.
pub struct ServeOptions {
    /// Directory of the TOML config files.
    pub config_dir: PathBuf,
    /// Address of the exchange listener; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Address of the admin listener; port 0 picks a free port.
    pub admin_listen: SocketAddr,
    /// Directory of the billing ledger and the audit log.
    pub data_dir: PathBuf,
    /// Overrides the config's audience snapshot path.
    pub segments: Option<PathBuf>,
    /// The time of day.
    pub clock: Arc<dyn Clock>,
    /// Watch the config and snapshot files for changes.
    pub watch: bool,
    /// Serve with the bundled development secrets on a non-loopback
    /// address (`--allow-dev-secrets`).
    pub allow_dev_secrets: bool,
    /// Cluster mode: the Redis URL from `--redis` or `BULLSEYE_REDIS_URL`
    /// (else the config's `[cluster] redis_url`; none: the node runs alone).
    pub redis_url: Option<String>,
    /// Cluster mode: this node's stable id (default: host name and port).
    pub node_id: Option<String>,
    /// Under the billing log (fault injection in tests); `None`: the disk.
    pub ledger_storage: Option<Arc<dyn crate::ledger::Storage>>,
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config is invalid (every problem listed).
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// The application could not be built (snapshot, data directory, ledger).
    #[error(transparent)]
    Build(BuildError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Cluster mode was asked for and the node could not join.
    #[error("cannot join the cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The file watcher could not start.
    #[error("cannot watch the config directory: {0}")]
    Watch(#[from] notify::Error),
    /// The bundled development secrets on an address others can reach.
    #[error(
        "refusing to listen on {addr} with the bundled development {which}: anyone could use it; set \
         BULLSEYE_SIGNING_KEY and BULLSEYE_ADMIN_TOKEN, or pass --allow-dev-secrets"
    )]
    DevSecrets {
        /// The non-loopback address asked for.
        addr: SocketAddr,
        /// Which development secrets are in use.
        which: &'static str,
    },
}

impl From<BuildError> for StartError {
    fn from(error: BuildError) -> StartError {
        match error {
            BuildError::Config(errors) => StartError::Config(errors),
            other => StartError::Build(other),
        }
    }
}

/// A started server.
pub struct Running {
    /// The exchange listener's address (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// The admin listener's address.
    pub admin_addr: SocketAddr,
    /// The application being served.
    pub app: Arc<App>,
    /// The reloader, for reloading by hand (the tests do).
    pub reloader: Arc<Reloader>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        let _ = (&mut self.task).await;
        // Billing events are already durable; bid counts and attribution
        // touches are written now.
        self.app.flush_bids();
        self.app.tracker.touches.flush();
        // What the learner was handed is trained, and its feature log
        // written out.
        let app = self.app.clone();
        let _ = tokio::task::spawn_blocking(move || app.learn_now()).await;
        if let Some(leases) = &self.app.leases {
            leases.give_back().await;
        }
    }

    /// Waits until the server stops on its own (it does not, today) or the
    /// task fails.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Binds, builds the application ([`App::build`]), and starts serving in
/// the background: the watcher, the housekeeping tick, and one serving
/// thread per core.
pub async fn start(options: ServeOptions) -> Result<Running, StartError> {
    let (addr, listeners) = bind(options.listen)?;
    let admin_listener = TcpListener::bind(options.admin_listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: options.admin_listen,
            source,
        })?;
    let admin_addr = admin_listener.local_addr().map_err(|source| StartError::Bind {
        addr: options.admin_listen,
        source,
    })?;
    let exposed = (!options.listen.ip().is_loopback(), !admin_addr.ip().is_loopback());
    let app = Arc::new(App::build(AppOptions {
        cluster: join_cluster(&options).await?,
        config_dir: options.config_dir,
        data_dir: options.data_dir,
        segments: options.segments,
        clock: options.clock,
        listen_url: format!("http://{addr}"),
        predictor: None,
        simulation: false,
        ledger_storage: options.ledger_storage,
    })?);
    // The signing key matters where tracking URLs are served, the admin
    // token where the admin API is.
    if !options.allow_dev_secrets
        && let Some(which) = app.dev_secrets(exposed.0, exposed.1)
    {
        return Err(StartError::DevSecrets {
            addr: if exposed.0 { options.listen } else { admin_addr },
            which,
        });
    }
    start_cluster_tasks(&app).await?;
    let reloader = app.reloader.clone();
    if options.watch {
        reloader.clone().watch()?;
    }
    spawn_ticker(app.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let console = Arc::new(Console::new());
    let admin = tokio::spawn(serve_admin(admin_listener, app.clone(), console, stopped.clone()));
    let exchange = spawn_serving_threads(listeners, app.clone(), stopped).map_err(|source| StartError::Bind {
        addr: options.listen,
        source,
    })?;
    let task = tokio::spawn(async move {
        let _ = exchange.await;
        let _ = admin.await;
    });
    tracing::info!(%admin_addr, "admin listening on {admin_addr}");
    tracing::info!(%addr, "bullseye listening on {addr}");
    Ok(Running {
        addr,
        admin_addr,
        app,
        reloader,
        stop: Some(stop),
        task,
    })
}

/// In a cluster: replication (after catching up) and the budget leases'
/// rounds.
async fn start_cluster_tasks(app: &Arc<App>) -> Result<(), StartError> {
    if let Some(node) = &app.cluster {
        replicate(node.clone(), app).await?;
    }
    if let Some(leases) = &app.leases {
        if !leases.first_round().await {
            tracing::warn!("budget leases: the first round failed; the node bids once Redis grants budget");
        }
        tokio::spawn(leases.clone().run());
    }
    Ok(())
}

/// Starts replication with the other nodes (`cluster::replication`):
/// catches up with the cluster's campaign files and suppressions, then
/// publishes this node's events and control changes and applies the
/// others' in the background.
async fn replicate(node: Arc<crate::cluster::Node>, app: &Arc<App>) -> Result<(), StartError> {
    let applying = app.clone();
    let sink: crate::cluster::replication::EventSink = Arc::new(move |events| {
        let world = applying.bidder.world.load();
        for event in events {
            applying.tracker.apply_replicated(&world, event);
        }
    });
    let outbox = app.live.outbox.clone();
    crate::cluster::replication::start(node, outbox, app.reloader.clone(), sink).await?;
    Ok(())
}

/// Joins the cluster when a Redis URL is given (flag or environment, else
/// the config's `[cluster] redis_url`): `None` runs the node alone. The
/// config is read here only for that URL and the signing key;
/// [`App::build`] reads and reports it in full.
async fn join_cluster(options: &ServeOptions) -> Result<Option<Arc<crate::cluster::Node>>, StartError> {
    let settings = match crate::config::load(&options.config_dir) {
        Ok(config) => config.settings,
        // Reported with every problem by App::build.
        Err(_) if options.redis_url.is_none() => return Ok(None),
        Err(errors) => return Err(errors.into()),
    };
    let Some(redis_url) = options.redis_url.clone().or(settings.cluster_redis_url) else {
        return Ok(None);
    };
    let node_id = match &options.node_id {
        Some(id) => id.clone(),
        None => crate::cluster::default_node_id(options.listen.port())?,
    };
    let cluster = crate::cluster::ClusterOptions { redis_url, node_id };
    let node = crate::cluster::Node::join(&cluster, &settings.signing_key).await?;
    tracing::info!(
        node = %node.id,
        redis = %crate::cluster::redacted(&cluster.redis_url),
        "joined the cluster"
    );
    Ok(Some(Arc::new(node)))
}

/// One listener per serving thread on the same port (SO_REUSEPORT): the
/// kernel spreads connections over them. SO_REUSEPORT would also let a
/// second bidder started by mistake on the same port share it silently: an
/// exclusive bind first makes that fail with "address in use". Asked for
/// port 0, the first listener picks the port and the others join it (a
/// probe released first could lose the port to any other socket).
fn bind(listen: SocketAddr) -> Result<(SocketAddr, Vec<TcpListener>), StartError> {
    let bind_err = |source| StartError::Bind { addr: listen, source };
    if listen.port() != 0 {
        drop(std::net::TcpListener::bind(listen).map_err(bind_err)?);
    }
    let first = reuseport_listener(listen).map_err(bind_err)?;
    let addr = first.local_addr().map_err(bind_err)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(reuseport_listener(addr).map_err(bind_err)?);
    }
    Ok((addr, listeners))
}

/// One thread per listener, each with its own single-threaded runtime, so
/// a connection's requests never hop threads; the returned task ends when
/// every thread has drained.
fn spawn_serving_threads(
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    let admission = Admission::new(&app.bidder.world.load().settings);
    let mut finished = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let (app, admission, stopped) = (app.clone(), admission.clone(), stopped.clone());
        let (done, finish) = oneshot::channel::<()>();
        finished.push(finish);
        let listener = listener.into_std()?;
        std::thread::Builder::new()
            .name(format!("bullseye-http-{i}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => return tracing::error!(error = %e, "serving thread could not start"),
                };
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, app, admission, stopped).await,
                        Err(e) => tracing::error!(error = %e, "serving thread could not listen"),
                    }
                });
                let _ = done.send(());
            })?;
    }
    Ok(tokio::spawn(async move {
        for finish in finished {
            let _ = finish.await;
        }
    }))
}

/// Runs [`App::tick`] every second, and the ledger's maintenance (rollups
/// of closed days and of today so far, retention) every ten minutes on the
/// blocking pool, in a task of its own: at ten million events a day it
/// rewrites tens of megabytes, and the tick (reservation expiry, pacing)
/// must not wait for it.
fn spawn_ticker(app: Arc<App>) {
    let ticking = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for second in 0u64.. {
            tick.tick().await;
            ticking.tick(second);
        }
    });
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            every.tick().await;
            let app = app.clone();
            let _ = tokio::task::spawn_blocking(move || app.ledger_maintenance()).await;
        }
    });
}

fn connection_builder(app: &App) -> http1::Builder {
    let settings = &app.bidder.world.load().settings;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .keep_alive(true)
        .max_headers(100)
        // A hard cap on a request head (431 past it): `max_buf_size` alone
        // is soft, a single read can overshoot it. Bodies are limited in
        // [`body`].
        .max_header_size(64 * 1024)
        .max_buf_size(64 * 1024);
    builder
}

/// The answer to a connection past `max_connections`: written once, without
/// reading the request, then the socket is closed.
const OVER_CAPACITY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/json\r\n\
content-length: 33\r\nconnection: close\r\n\r\n{\"error\":\"too many connections\"}\n";

/// Waits (in its own task) for a new connection's first bytes, for at most
/// `timeout`, then hands it back to the accept loop; a connection that sends
/// nothing is closed and its slot freed. Only the first request has this
/// short wait: keep-alive between requests stays long.
fn wait_for_first_bytes(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    timeout: Duration,
    ready: tokio::sync::mpsc::UnboundedSender<(tokio::net::TcpStream, SocketAddr, Ticket)>,
) {
    tokio::spawn(async move {
        // `peek` waits for real bytes (readiness alone can be spurious).
        let mut first = [0u8; 1];
        if tokio::time::timeout(timeout, stream.peek(&mut first))
            .await
            .is_ok_and(|r| r.is_ok_and(|n| n > 0))
        {
            let _ = ready.send((stream, peer, ticket));
        } else {
            tracing::debug!(%peer, "connection sent nothing in time; closed");
        }
    });
}

/// Sheds a connection over a limit: 503 with `Retry-After`, then close.
/// The write is bounded in time, so refused clients hold nothing.
fn refuse(stream: tokio::net::TcpStream, app: &App, refusal: Refusal) {
    app.bidder.metrics.connection_refused();
    tracing::debug!(?refusal, "connection limit reached; new connection refused with 503");
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut stream = stream;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            stream.write_all(OVER_CAPACITY).await?;
            stream.shutdown().await
        })
        .await;
    });
}

/// A listening socket with SO_REUSEPORT, for one serving thread.
fn reuseport_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// One serving thread's accept loop; `connections` is shared by all.
async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    admission: Arc<Admission>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let builder = connection_builder(&app);
    let first_request_timeout = app.bidder.world.load().settings.first_request_timeout;
    // Connections whose first bytes have arrived, back from their wait.
    let (ready, mut arrived) = tokio::sync::mpsc::unbounded_channel::<(tokio::net::TcpStream, SocketAddr, Ticket)>();
    loop {
        let (stream, peer, ticket) = tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep going.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                match admission.admit(peer.ip()) {
                    Ok(ticket) => wait_for_first_bytes(stream, peer, ticket, first_request_timeout, ready.clone()),
                    Err(refusal) => refuse(stream, &app, refusal),
                }
                continue;
            }
            Some(ready) = arrived.recv() => ready,
            _ = stopped.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let reserved = ticket.reserved;
        let service = service_fn(move |request| {
            let app = app.clone();
            async move {
                if reserved && request.uri().path().starts_with("/openrtb2/") {
                    return Ok::<_, Infallible>(routes::bids_over_capacity());
                }
                Ok::<_, Infallible>(routes::handle(&app, request, Some(peer)).await)
            }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(ticket);
        });
    }
    drop(listener);
    let drained = async {
        graceful.shutdown().await;
        // Tracking events whose exchange hung up run on after their
        // connection: this thread's runtime must live until they (every
        // thread's: each thread waits) finish.
        app.event_tasks.close();
        app.event_tasks.wait().await;
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
        tracing::warn!("in-flight requests did not finish in time");
    }
    tracing::info!("server stopped");
}

/// Connections the admin listener serves at once; more wait in the backlog.
const ADMIN_CONNECTIONS: usize = 256;

/// The admin listener's accept loop: the admin API, the console, metrics.
async fn serve_admin(
    listener: TcpListener,
    app: Arc<App>,
    console: Arc<Console>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let builder = connection_builder(&app);
    let slots = Arc::new(tokio::sync::Semaphore::new(ADMIN_CONNECTIONS));
    loop {
        let (stream, peer, slot) = tokio::select! {
            slot = slots.clone().acquire_owned() => {
                let Ok(slot) = slot else { break };
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => (stream, peer, slot),
                        Err(e) => {
                            tracing::warn!(error = %e, "admin accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = stopped.changed() => break,
                }
            }
            _ = stopped.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let (app, console) = (app.clone(), console.clone());
        let service = service_fn(move |request| {
            let (app, console) = (app.clone(), console.clone());
            async move { Ok::<_, Infallible>(routes::handle_admin(&app, &console, request, peer).await) }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight admin requests did not finish in time");
    }
}
