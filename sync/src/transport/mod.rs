//! The device transport: TLS 1.3 over TCP between paired devices, carrying
//! length-prefixed frames, exposed to the (blocking) session code as a
//! [`FrameChannel`].
//!
//! - **Handshake.** rustls with the aws-lc-rs provider, TLS 1.3 only, one key
//!   exchange group: the hybrid X25519MLKEM768 (a peer offering only classical
//!   groups finds no common group and is refused; there is no fallback). Both
//!   sides present a self-signed certificate of their device key (Ed25519) and
//!   both verify the other's against the paired devices ([`TrustedPeers`]):
//!   the certificate's key must be a paired device's and the handshake
//!   signature must verify with it; no CA, names or dates. No session
//!   resumption (every session presents and checks certificates again), no SNI.
//! - **Preface.** After the handshake each side sends 8 bytes, `SSYN` and the
//!   transport version (u32 big-endian, [`TRANSPORT_VERSION`]), and reads the
//!   other's. The accepting side sends its preface only once the connecting
//!   device's certificate passed, so [`Transport::connect`] returns only when
//!   the peer has accepted this device; an unknown device gets an error and no
//!   application data is read from it.
//! - **Frames.** A u32 big-endian length, then that many bytes; a length over
//!   [`MAX_FRAME_BYTES`] ends the session with [`ChannelError::Oversized`]
//!   before any of the frame is read, a connection that ends inside a frame or
//!   without TLS's close_notify is an error, and a clean close between frames
//!   is `Ok(None)`. After any error the channel refuses further use.
//! - **Liveness.** TCP keepalive probes an idle connection and TCP_USER_TIMEOUT
//!   bounds how long sent data may stay unacknowledged, so a cut link ends a
//!   session within a bounded time even while the peer's session code is busy;
//!   each send and each wait for a frame is also bounded ([`TransportOptions`]).
//! - **Blocking bridge.** A [`Transport`] owns a small tokio runtime (one worker
//!   thread); its channels and listener drive their I/O with `block_on` from the
//!   caller's thread. They must not be used from inside an async runtime (they
//!   return an error if they are).

mod verify;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

use crate::channel::{ChannelError, FrameChannel, MAX_FRAME_BYTES};
use crate::identity::{DeviceId, DeviceIdentity, IdentityError};
use verify::{PinnedClientVerifier, PinnedServerVerifier, UnknownDevice};
pub use verify::TrustedPeers;

/// Version of the transport (preface and framing) this build speaks.
pub const TRANSPORT_VERSION: u32 = 1;
/// First four bytes of the preface.
const PREFACE_MAGIC: &[u8; 4] = b"SSYN";
/// The name the connecting side verifies against: unused (the key is pinned,
/// and SNI is off, so it never goes on the wire).
const SERVER_NAME: &str = "peer.synapsed-storage.invalid";
/// Frames up to this size are copied behind their header and written at once.
const SMALL_FRAME_BYTES: usize = 64 << 10;
/// How long dropping a channel waits to send TLS close_notify.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Timeouts and keepalive of a [`Transport`]. Defaults: handshake 10 s, one
/// send 30 s, wait for a frame 300 s, keepalive after 5 s idle then every 2 s,
/// 3 unanswered probes end the connection (a dead idle link is found within
/// 11 s), unacknowledged data for 15 s ends it (TCP_USER_TIMEOUT, Linux).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportOptions {
    /// TCP connect + TLS handshake + preface.
    pub handshake_timeout: Duration,
    /// Sending one frame.
    pub send_timeout: Duration,
    /// Waiting for, and reading, one frame.
    pub recv_timeout: Duration,
    /// Idle time before the first keepalive probe.
    pub keepalive_idle: Duration,
    /// Time between keepalive probes.
    pub keepalive_interval: Duration,
    /// Unanswered probes after which the connection is dead.
    pub keepalive_probes: u32,
    /// Longest time sent data may stay unacknowledged (Linux only).
    pub user_timeout: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            handshake_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            recv_timeout: Duration::from_secs(300),
            keepalive_idle: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(2),
            keepalive_probes: 3,
            user_timeout: Duration::from_secs(15),
        }
    }
}

impl TransportOptions {
    /// Sets [`TransportOptions::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, d: Duration) -> Self {
        self.handshake_timeout = d;
        self
    }
    /// Sets [`TransportOptions::send_timeout`].
    pub fn with_send_timeout(mut self, d: Duration) -> Self {
        self.send_timeout = d;
        self
    }
    /// Sets [`TransportOptions::recv_timeout`].
    pub fn with_recv_timeout(mut self, d: Duration) -> Self {
        self.recv_timeout = d;
        self
    }
    /// Sets [`TransportOptions::keepalive_idle`].
    pub fn with_keepalive_idle(mut self, d: Duration) -> Self {
        self.keepalive_idle = d;
        self
    }
    /// Sets [`TransportOptions::keepalive_interval`].
    pub fn with_keepalive_interval(mut self, d: Duration) -> Self {
        self.keepalive_interval = d;
        self
    }
    /// Sets [`TransportOptions::keepalive_probes`].
    pub fn with_keepalive_probes(mut self, n: u32) -> Self {
        self.keepalive_probes = n;
        self
    }
    /// Sets [`TransportOptions::user_timeout`].
    pub fn with_user_timeout(mut self, d: Duration) -> Self {
        self.user_timeout = d;
        self
    }
}

/// A transport that could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The device identity could not give a certificate.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// TLS or the runtime could not be configured.
    #[error("cannot set up the device transport: {0}")]
    Setup(String),
}

/// The crypto provider of every device connection: aws-lc-rs, TLS 1.3 cipher
/// suites, the X25519MLKEM768 group alone.
pub fn crypto_provider() -> CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768];
    provider.cipher_suites.retain(|s| s.version() == &rustls::version::TLS13);
    provider
}

/// The runtime of a transport, shut down without blocking when the last
/// user lets go (so that dropping one never panics, wherever it happens).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn block_on<F: std::future::Future>(&self, f: F) -> Result<F::Output, ChannelError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(ChannelError::Io(io::Error::other(
                "the blocking device transport was used from inside an async runtime",
            )));
        }
        match &self.0 {
            Some(rt) => Ok(rt.block_on(f)),
            None => Err(ChannelError::Io(io::Error::other("the transport's runtime is gone"))),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// One device's end of the transport: its identity, the devices it trusts,
/// and the runtime its connections run on.
pub struct Transport {
    rt: Arc<Runtime>,
    connector: TlsConnector,
    acceptor: TlsAcceptor,
    options: TransportOptions,
    me: DeviceId,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("device", &self.me).field("options", &self.options).finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport for `identity` that accepts the devices of `trusted`
    /// (checked at each handshake, so later changes to the set apply to later
    /// sessions).
    pub fn new(identity: &DeviceIdentity, trusted: TrustedPeers, options: TransportOptions) -> Result<Transport, TransportError> {
        let provider = Arc::new(crypto_provider());
        let algorithms = provider.signature_verification_algorithms;
        let cert = identity.certificate()?;
        let setup = |e: rustls::Error| TransportError::Setup(e.to_string());

        let mut server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(setup)?
            .with_client_cert_verifier(Arc::new(PinnedClientVerifier { trusted: trusted.clone(), algorithms }))
            .with_single_cert(vec![cert.clone()], identity.private_key())
            .map_err(setup)?;
        server.send_tls13_tickets = 0;
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});

        let mut client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(setup)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServerVerifier { trusted, algorithms }))
            .with_client_auth_cert(vec![cert], identity.private_key())
            .map_err(setup)?;
        client.enable_sni = false;
        client.resumption = Resumption::disabled();

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("synapsed-transport")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| TransportError::Setup(format!("cannot start the network runtime: {e}")))?;
        Ok(Transport {
            rt: Arc::new(Runtime(Some(rt))),
            connector: TlsConnector::from(Arc::new(client)),
            acceptor: TlsAcceptor::from(Arc::new(server)),
            options,
            me: identity.device_id(),
        })
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.me
    }

    /// Connects to the device listening at `addr` (each address it resolves to
    /// in turn), authenticates both ways and exchanges prefaces. Fails with
    /// [`ChannelError::Protocol`] if the peer is not a paired device or refuses
    /// this one, [`ChannelError::Io`] on network failure or timeout.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> Result<TlsChannel, ChannelError> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let mut last = None;
        for addr in addrs {
            match self.connect_one(addr) {
                Ok(ch) => return Ok(ch),
                Err(e @ ChannelError::Io(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ChannelError::Io(io::Error::new(io::ErrorKind::InvalidInput, "the address resolves to nothing"))))
    }

    fn connect_one(&self, addr: SocketAddr) -> Result<TlsChannel, ChannelError> {
        let connector = self.connector.clone();
        let options = self.options.clone();
        let name = ServerName::try_from(SERVER_NAME).map_err(|e| ChannelError::Io(io::Error::other(e.to_string())))?;
        let stream = self.rt.block_on(timed(options.handshake_timeout, "connecting and the TLS handshake", async move {
            let tcp = TcpStream::connect(addr).await?;
            tune(&tcp, &options)?;
            let mut tls = TlsStream::from(connector.connect(name, tcp).await.map_err(classify)?);
            exchange_prefaces(&mut tls).await?;
            Ok(tls)
        }))??;
        TlsChannel::new(Arc::clone(&self.rt), stream, self.options.clone())
    }

    /// Listens for sessions at `addr` (port 0: any free port, see
    /// [`Listener::local_addr`]). Connections are accepted and their
    /// handshakes run in the background, up to [`MAX_PENDING_HANDSHAKES`] at
    /// once, so a peer that stalls its handshake delays nobody else;
    /// [`Listener::accept`] hands out the results in the order they finish.
    pub fn listen(&self, addr: impl ToSocketAddrs) -> Result<Listener, ChannelError> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let tcp = self.rt.block_on(TcpListener::bind(addrs.as_slice()))??;
        let local = tcp.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(READY_SESSIONS);
        let acceptor = self.acceptor.clone();
        let options = self.options.clone();
        let task = match &self.rt.0 {
            Some(rt) => rt.spawn(accept_loop(tcp, acceptor, options, tx)),
            None => return Err(ChannelError::Io(io::Error::other("the transport's runtime is gone"))),
        };
        Ok(Listener { rt: Arc::clone(&self.rt), ready: parking_lot::Mutex::new(rx), task, options: self.options.clone(), local })
    }
}

/// Most handshakes a listener runs at once; further connections wait in the
/// kernel's backlog.
pub const MAX_PENDING_HANDSHAKES: usize = 64;
/// Sessions authenticated but not yet taken by [`Listener::accept`].
const READY_SESSIONS: usize = 8;

type Handshaken = Result<TlsStream<TcpStream>, ChannelError>;

/// Accepts connections and runs each handshake in a task of its own.
async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, options: TransportOptions, ready: tokio::sync::mpsc::Sender<Handshaken>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { return };
        let conn = match tcp.accept().await {
            Ok((conn, _)) => conn,
            Err(e) => {
                if ready.send(Err(ChannelError::Io(e))).await.is_err() {
                    return;
                }
                // Not a busy loop when accepting keeps failing (out of descriptors).
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let (acceptor, options, ready) = (acceptor.clone(), options.clone(), ready.clone());
        tokio::spawn(async move {
            let limit = options.handshake_timeout;
            let result = timed(limit, "the TLS handshake", async move {
                tune(&conn, &options)?;
                let mut tls = TlsStream::from(acceptor.accept(conn).await.map_err(classify)?);
                exchange_prefaces(&mut tls).await?;
                Ok(tls)
            })
            .await;
            // The permit is held until the session is handed over (backpressure).
            let _ = ready.send(result).await;
            drop(permit);
        });
    }
}

/// Accepts sessions from paired devices. Dropping it stops listening.
pub struct Listener {
    rt: Arc<Runtime>,
    ready: parking_lot::Mutex<tokio::sync::mpsc::Receiver<Handshaken>>,
    task: tokio::task::JoinHandle<()>,
    options: TransportOptions,
    local: SocketAddr,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("local", &self.local).finish_non_exhaustive()
    }
}

impl Listener {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next authenticated session, waiting for one as long as it takes.
    /// An error concerns one connection (an unknown device, a failed or
    /// stalled handshake, a failed accept): the listener goes on and the
    /// caller may accept again.
    pub fn accept(&self) -> Result<TlsChannel, ChannelError> {
        let mut ready = self.ready.lock();
        let stream = self
            .rt
            .block_on(ready.recv())?
            .ok_or_else(|| ChannelError::Io(io::Error::other("the listener stopped")))??;
        TlsChannel::new(Arc::clone(&self.rt), stream, self.options.clone())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An authenticated session with one paired device: a blocking [`FrameChannel`].
/// Dropping it closes the connection cleanly (TLS close_notify, so the peer's
/// `recv` gives `Ok(None)`) unless it failed.
pub struct TlsChannel {
    rt: Arc<Runtime>,
    stream: TlsStream<TcpStream>,
    peer: DeviceId,
    peer_addr: Option<SocketAddr>,
    options: TransportOptions,
    failed: Option<String>,
    closed: bool,
}

impl std::fmt::Debug for TlsChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsChannel").field("peer", &self.peer).field("peer_addr", &self.peer_addr).finish_non_exhaustive()
    }
}

impl TlsChannel {
    fn new(rt: Arc<Runtime>, stream: TlsStream<TcpStream>, options: TransportOptions) -> Result<TlsChannel, ChannelError> {
        let (tcp, state) = stream.get_ref();
        let cert = state
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| ChannelError::Protocol("the peer presented no certificate".into()))?;
        let peer = DeviceId::of_certificate(cert).map_err(|e| ChannelError::Protocol(e.to_string()))?;
        let peer_addr = tcp.peer_addr().ok();
        Ok(TlsChannel { rt, stream, peer, peer_addr, options, failed: None, closed: false })
    }

    /// The authenticated device at the other end (look its rights up by it).
    pub fn peer(&self) -> DeviceId {
        self.peer
    }

    /// The peer's network address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Closes the session cleanly (TLS close_notify); the peer's next `recv`
    /// gives `Ok(None)`.
    pub fn close(mut self) -> Result<(), ChannelError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ChannelError> {
        if self.closed || self.failed.is_some() {
            self.closed = true;
            return Ok(());
        }
        self.closed = true;
        let stream = &mut self.stream;
        self.rt.block_on(timed(CLOSE_TIMEOUT, "closing", async move { stream.shutdown().await.map_err(classify) }))??;
        Ok(())
    }

    fn usable(&self) -> Result<(), ChannelError> {
        if let Some(why) = &self.failed {
            return Err(ChannelError::Io(io::Error::new(io::ErrorKind::NotConnected, format!("the session already failed: {why}"))));
        }
        if self.closed {
            return Err(ChannelError::Io(io::Error::new(io::ErrorKind::NotConnected, "the session was closed")));
        }
        Ok(())
    }

    fn note<T>(&mut self, r: Result<T, ChannelError>) -> Result<T, ChannelError> {
        if let Err(e) = &r {
            self.failed = Some(e.to_string());
        }
        r
    }
}

impl FrameChannel for TlsChannel {
    fn send(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        self.usable()?;
        if frame.len() > MAX_FRAME_BYTES {
            // Nothing was sent: the session can go on.
            return Err(ChannelError::Oversized { len: frame.len() as u64, max: MAX_FRAME_BYTES });
        }
        let header = (frame.len() as u32).to_be_bytes();
        let stream = &mut self.stream;
        let r = self
            .rt
            .block_on(timed(self.options.send_timeout, "sending a frame", async move {
                if frame.len() <= SMALL_FRAME_BYTES {
                    // One record for a small frame: nothing on the wire shows
                    // where its header ends.
                    let mut whole = Vec::with_capacity(4 + frame.len());
                    whole.extend_from_slice(&header);
                    whole.extend_from_slice(frame);
                    stream.write_all(&whole).await.map_err(classify)?;
                } else {
                    stream.write_all(&header).await.map_err(classify)?;
                    stream.write_all(frame).await.map_err(classify)?;
                }
                stream.flush().await.map_err(classify)
            }))
            .and_then(|r| r);
        self.note(r)
    }

    fn recv(&mut self) -> Result<Option<Vec<u8>>, ChannelError> {
        self.usable()?;
        let stream = &mut self.stream;
        let r = self.rt.block_on(timed(self.options.recv_timeout, "waiting for a frame", read_frame(stream))).and_then(|r| r);
        if let Ok(None) = r {
            self.closed = true;
        }
        self.note(r)
    }
}

impl Drop for TlsChannel {
    fn drop(&mut self) {
        // Best effort: a peer that went away has nothing to be told.
        let _ = self.shutdown();
    }
}

/// Runs `f` for at most `limit`; a timeout is an `Io(TimedOut)` naming `what`.
async fn timed<T>(
    limit: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, ChannelError>>,
) -> Result<T, ChannelError> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(ChannelError::Io(io::Error::new(io::ErrorKind::TimedOut, format!("{what} took longer than {limit:?}")))),
    }
}

/// Keepalive and user timeout (bounded detection of a dead link), no Nagle delay.
fn tune(tcp: &TcpStream, o: &TransportOptions) -> io::Result<()> {
    tcp.set_nodelay(true)?;
    let sock = socket2::SockRef::from(tcp);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(o.keepalive_idle)
        .with_interval(o.keepalive_interval)
        .with_retries(o.keepalive_probes);
    sock.set_tcp_keepalive(&keepalive)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    sock.set_tcp_user_timeout(Some(o.user_timeout))?;
    Ok(())
}

/// Both sides send the preface, then read the other's.
async fn exchange_prefaces<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Result<(), ChannelError> {
    let mut mine = [0u8; 8];
    mine[..4].copy_from_slice(PREFACE_MAGIC);
    mine[4..].copy_from_slice(&TRANSPORT_VERSION.to_be_bytes());
    s.write_all(&mine).await.map_err(classify)?;
    s.flush().await.map_err(classify)?;
    let mut theirs = [0u8; 8];
    s.read_exact(&mut theirs).await.map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ChannelError::Protocol("the peer closed the connection during the handshake".into()),
        _ => classify(e),
    })?;
    let (magic, version) = theirs.split_at(4);
    if magic != PREFACE_MAGIC {
        return Err(ChannelError::Protocol("the peer does not speak the device transport".into()));
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(version);
    let version = u32::from_be_bytes(v);
    if version != TRANSPORT_VERSION {
        return Err(ChannelError::Protocol(format!("the peer speaks transport version {version}; this build speaks {TRANSPORT_VERSION}")));
    }
    Ok(())
}

async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> Result<Option<Vec<u8>>, ChannelError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while let Some(rest) = header.get_mut(got..).filter(|r| !r.is_empty()) {
        let n = s.read(rest).await.map_err(classify)?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(mid_frame());
        }
        got += n;
    }
    let len = u64::from(u32::from_be_bytes(header));
    if len > MAX_FRAME_BYTES as u64 {
        return Err(ChannelError::Oversized { len, max: MAX_FRAME_BYTES });
    }
    let mut frame = vec![0u8; len as usize];
    s.read_exact(&mut frame).await.map_err(|e| if e.kind() == io::ErrorKind::UnexpectedEof { mid_frame() } else { classify(e) })?;
    Ok(Some(frame))
}

fn mid_frame() -> ChannelError {
    ChannelError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer went away in the middle of a frame"))
}

/// An I/O error of the TLS stream as a channel error: TLS failures (refused
/// certificate, alerts, records that fail authentication) become `Protocol`
/// errors that say what happened; network failures stay `Io`.
fn classify(e: io::Error) -> ChannelError {
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return ChannelError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the connection ended without TLS close_notify (cut or truncated): {e}"),
            ));
        }
        return ChannelError::Io(e);
    };
    let text = match tls {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => match other.0.downcast_ref::<UnknownDevice>() {
            Some(unknown) => format!("refused: {unknown}"),
            None => format!("refused the peer's certificate: {tls}"),
        },
        rustls::Error::AlertReceived(alert) => {
            format!("the peer ended the handshake or session with TLS alert {alert:?} (is this device paired there?)")
        }
        rustls::Error::DecryptError => "a TLS record failed authentication (tampered, replayed or out of order)".into(),
        rustls::Error::PeerIncompatible(why) => format!("the peer's TLS is incompatible ({why:?}): TLS 1.3 with X25519MLKEM768 is required"),
        other => format!("TLS failure: {other}"),
    };
    ChannelError::Protocol(text)
}
