//! The device transport's security properties, each against a live TLS
//! connection on loopback: paired devices exchange frames; an unpaired device,
//! an impostor (another device's certificate without its key, or its id on a
//! certificate of another key), a classical-only TLS client, oversized and
//! truncated frames are refused with a clear error before any frame is
//! delivered; a record flipped or replayed on the wire ends the session; and
//! a capture of the traffic holds no frame plaintext, no device key, no id.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use sync::transport::{Transport, TransportOptions, TrustedPeers};
use sync::{ChannelError, DeviceIdentity, FrameChannel, MAX_FRAME_BYTES};

fn options() -> TransportOptions {
    TransportOptions::default()
        .with_handshake_timeout(Duration::from_secs(5))
        .with_recv_timeout(Duration::from_secs(10))
        .with_send_timeout(Duration::from_secs(10))
}

/// Two devices paired with each other, and the transport of each.
struct Pair {
    a: DeviceIdentity,
    b: DeviceIdentity,
    ta: Transport,
    tb: Transport,
}

fn pair() -> Pair {
    let a = DeviceIdentity::generate().unwrap();
    let b = DeviceIdentity::generate().unwrap();
    let ta = Transport::new(&a, TrustedPeers::new([b.device_id()]), options()).unwrap();
    let tb = Transport::new(&b, TrustedPeers::new([a.device_id()]), options()).unwrap();
    Pair { a, b, ta, tb }
}

/// `tb` accepts one session on loopback and hands it to `serve`; returns the
/// address and the thread (with what `serve` returns, or the accept error).
fn serve_one<T: Send + 'static>(
    tb: Transport,
    serve: impl FnOnce(sync::transport::TlsChannel) -> T + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<Result<T, ChannelError>>) {
    let listener = tb.listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr();
    let handle = thread::spawn(move || {
        let _keep = tb;
        listener.accept().map(serve)
    });
    (addr, handle)
}

/// Echoes every frame until the peer closes; returns the frames seen, or the
/// error that ended the session.
fn echo(mut ch: sync::transport::TlsChannel) -> Result<Vec<Vec<u8>>, ChannelError> {
    let mut seen = Vec::new();
    while let Some(frame) = ch.recv()? {
        ch.send(&frame)?;
        seen.push(frame);
    }
    Ok(seen)
}

#[test]
fn paired_devices_exchange_frames_and_close_cleanly() {
    let Pair { a, b, ta, tb } = pair();
    let a_id = a.device_id();
    let (addr, server) = serve_one(tb, move |ch| {
        assert_eq!(ch.peer(), a_id);
        echo(ch)
    });
    let mut ch = ta.connect(addr).unwrap();
    assert_eq!(ch.peer(), b.device_id());
    let frames: Vec<Vec<u8>> =
        vec![Vec::new(), b"x".to_vec(), vec![7; 70 << 10], (0..MAX_FRAME_BYTES).map(|i| (i % 251) as u8).collect()];
    for f in &frames {
        ch.send(f).unwrap();
        assert_eq!(&ch.recv().unwrap().unwrap(), f);
    }
    // A frame over the limit is refused before anything is sent; the session goes on.
    let too_big = vec![0u8; MAX_FRAME_BYTES + 1];
    assert!(matches!(ch.send(&too_big), Err(ChannelError::Oversized { .. })));
    ch.send(b"after").unwrap();
    assert_eq!(ch.recv().unwrap().unwrap(), b"after");
    ch.close().unwrap();
    let seen = server.join().unwrap().unwrap().unwrap();
    assert_eq!(seen.len(), frames.len() + 1);
}

#[test]
fn an_unpaired_device_is_refused_before_any_frame() {
    let Pair { tb, b, .. } = pair();
    let stranger = DeviceIdentity::generate().unwrap();
    // The stranger trusts b, b does not know the stranger.
    let ts = Transport::new(&stranger, TrustedPeers::new([b.device_id()]), options()).unwrap();
    let (addr, server) = serve_one(tb, echo);
    let err = ts.connect(addr).unwrap_err();
    assert!(matches!(err, ChannelError::Protocol(_)), "{err}");
    let refused = server.join().unwrap().unwrap_err();
    let text = refused.to_string();
    assert!(text.contains(&format!("unknown device {}", stranger.device_id())), "{text}");

    // The other way: a server this device has not paired is refused by the client.
    let Pair { ta, .. } = pair();
    let server_side = Transport::new(&stranger, TrustedPeers::new([ta.device_id()]), options()).unwrap();
    let (addr, server) = serve_one(server_side, echo);
    let err = ta.connect(addr).unwrap_err();
    assert!(err.to_string().contains(&format!("unknown device {}", stranger.device_id())), "{err}");
    assert!(server.join().unwrap().is_err());
}

#[derive(Debug)]
struct AcceptAnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("no TLS 1.2".into()))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Presents a fixed certificate with a fixed key, matching or not.
#[derive(Debug)]
struct FixedClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for FixedClientCert {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// A hand-built TLS 1.3 client presenting `cert` and signing with `key`,
/// offering only `groups`.
fn raw_client(cert: CertificateDer<'static>, key: &DeviceIdentity, groups: Vec<&'static dyn SupportedKxGroup>) -> Arc<ClientConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = groups;
    let provider = Arc::new(provider);
    let signing = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec())))
        .unwrap();
    let certified = Arc::new(CertifiedKey::new(vec![cert], signing));
    let algs = provider.signature_verification_algorithms;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(algs)))
        .with_client_cert_resolver(Arc::new(FixedClientCert(certified)));
    Arc::new(config)
}

/// Runs the handshake of a hand-built client and reads the server's preface.
fn raw_session(config: Arc<ClientConfig>, addr: SocketAddr) -> std::io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let conn = ClientConnection::new(config, ServerName::try_from("peer").unwrap()).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut s = StreamOwned::new(conn, tcp);
    s.conn.complete_io(&mut s.sock)?;
    let mut preface = [0u8; 8];
    s.read_exact(&mut preface)?;
    assert_eq!(&preface[..4], b"SSYN");
    s.write_all(&preface)?;
    Ok(s)
}

fn pq() -> Vec<&'static dyn SupportedKxGroup> {
    vec![rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768]
}

#[test]
fn the_hand_built_client_is_accepted_when_honest() {
    // The control of the tests below: the same client, with the paired key and
    // the hybrid group, gets a session and its frame through.
    let Pair { a, tb, .. } = pair();
    let (addr, server) = serve_one(tb, |mut ch| ch.recv());
    let mut s = raw_session(raw_client(a.certificate().unwrap(), &a, pq()), addr).unwrap();
    s.write_all(&[0, 0, 0, 2, b'h', b'i']).unwrap();
    s.flush().unwrap();
    assert_eq!(server.join().unwrap().unwrap().unwrap().unwrap(), b"hi");
}

#[test]
fn a_device_presenting_another_ones_identity_is_refused() {
    let Pair { a, tb, .. } = pair();
    let impostor = DeviceIdentity::generate().unwrap();
    // 1. a's own certificate, but the impostor's key signs the handshake.
    let (addr, server) = serve_one(tb, |mut ch| ch.recv());
    let r = raw_session(raw_client(a.certificate().unwrap(), &impostor, pq()), addr);
    assert!(r.is_err(), "the impostor got a session");
    let err = server.join().unwrap().unwrap_err().to_string();
    assert!(err.contains("TLS failure") || err.contains("refused"), "{err}");
    assert!(err.to_lowercase().contains("signature"), "{err}");

    // 2. A certificate of the impostor's key naming a's device id as its subject.
    let Pair { a, tb, .. } = pair();
    let pair_key = rcgen_like_cert_naming(&impostor, &a.device_id().to_string());
    let (addr, server) = serve_one(tb, |mut ch| ch.recv());
    assert!(raw_session(raw_client(pair_key, &impostor, pq()), addr).is_err());
    let err = server.join().unwrap().unwrap_err().to_string();
    assert!(err.contains(&format!("unknown device {}", impostor.device_id())), "{err}");
}

/// A self-signed certificate of `key` whose subject is `name` (the device
/// certificates carry the device id there; nothing checks it).
fn rcgen_like_cert_naming(key: &DeviceIdentity, name: &str) -> CertificateDer<'static> {
    let cert = key.certificate().unwrap();
    // The identity's certificate names its own id: swap the text in place
    // (same length) and keep the signature, which nobody verifies either.
    let own = key.device_id().to_string();
    let mut der = cert.to_vec();
    let at = der.windows(own.len()).position(|w| w == own.as_bytes()).unwrap();
    der[at..at + own.len()].copy_from_slice(name.as_bytes());
    CertificateDer::from(der)
}

#[test]
fn a_classical_only_client_is_refused() {
    let Pair { a, tb, .. } = pair();
    let (addr, server) = serve_one(tb, |mut ch| ch.recv());
    let classical = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    let r = raw_session(raw_client(a.certificate().unwrap(), &a, classical), addr);
    assert!(r.is_err(), "a classical-only client got a session");
    let err = server.join().unwrap().unwrap_err().to_string();
    assert!(err.contains("incompatible") && err.contains("X25519MLKEM768"), "{err}");
}

#[test]
fn oversized_truncated_and_foreign_streams_end_the_session() {
    // A header announcing more than the limit.
    let Pair { a, tb, .. } = pair();
    let (addr, server) = serve_one(tb, |mut ch| {
        let r = ch.recv();
        (r, ch.recv())
    });
    let mut s = raw_session(raw_client(a.certificate().unwrap(), &a, pq()), addr).unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    s.flush().unwrap();
    let (first, then) = server.join().unwrap().unwrap();
    assert!(matches!(first, Err(ChannelError::Oversized { len: 0xffff_ffff, .. })), "{first:?}");
    assert!(then.is_err(), "the session went on after an oversized frame");

    // A frame cut short, then a clean TLS close.
    let Pair { a, tb, .. } = pair();
    let (addr, server) = serve_one(tb, |mut ch| ch.recv());
    let mut s = raw_session(raw_client(a.certificate().unwrap(), &a, pq()), addr).unwrap();
    s.write_all(&[0, 0, 0, 100, 1, 2, 3]).unwrap();
    s.conn.send_close_notify();
    s.flush().unwrap();
    let err = server.join().unwrap().unwrap().unwrap_err().to_string();
    assert!(err.contains("middle of a frame"), "{err}");

    // A connection cut (no close_notify) between frames is not a clean end.
    let Pair { a, tb, .. } = pair();
    let (addr, server) = serve_one(tb, |mut ch| ch.recv());
    let s = raw_session(raw_client(a.certificate().unwrap(), &a, pq()), addr).unwrap();
    s.sock.shutdown(std::net::Shutdown::Both).unwrap();
    let err = server.join().unwrap().unwrap().unwrap_err().to_string();
    assert!(err.contains("close_notify"), "{err}");

    // A peer that completes TLS but does not speak the transport.
    let Pair { a, tb, .. } = pair();
    let (addr, server) = serve_one(tb, |mut ch| ch.recv());
    let conn = ClientConnection::new(raw_client(a.certificate().unwrap(), &a, pq()), ServerName::try_from("peer").unwrap()).unwrap();
    let mut s = StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    s.sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    s.flush().unwrap();
    let err = server.join().unwrap().unwrap_err().to_string();
    assert!(err.contains("does not speak the device transport"), "{err}");
}

/// What the proxy does to the first client-to-server application record of at
/// least 4,000 bytes (a frame; handshake records are smaller).
#[derive(Clone, Copy, PartialEq)]
enum Tamper {
    Nothing,
    FlipAByte,
    Replay,
}

/// A TCP proxy for one connection that records every byte both ways.
struct Proxy {
    addr: SocketAddr,
    captured: Arc<Mutex<Vec<u8>>>,
}

fn proxy(upstream: SocketAddr, tamper: Tamper) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let captured = Arc::new(Mutex::new(Vec::new()));
    let cap = Arc::clone(&captured);
    thread::spawn(move || {
        let (down, _) = listener.accept().unwrap();
        let up = TcpStream::connect(upstream).unwrap();
        let (up2, down2, cap2) = (up.try_clone().unwrap(), down.try_clone().unwrap(), Arc::clone(&cap));
        thread::spawn(move || {
            let (mut from, mut to) = (up2, down2);
            let mut buf = [0u8; 16 << 10];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        cap2.lock().unwrap().extend_from_slice(&buf[..n]);
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
        let (mut from, mut to) = (down, up);
        let mut done = false;
        loop {
            let mut header = [0u8; 5];
            if from.read_exact(&mut header).is_err() {
                break;
            }
            let len = u16::from_be_bytes([header[3], header[4]]) as usize;
            let mut body = vec![0u8; len];
            if from.read_exact(&mut body).is_err() {
                break;
            }
            cap.lock().unwrap().extend_from_slice(&header);
            cap.lock().unwrap().extend_from_slice(&body);
            let target = !done && header[0] == 0x17 && len >= 4000;
            if target && tamper == Tamper::FlipAByte {
                body[len / 2] ^= 0x01;
            }
            let record = [&header[..], &body[..]].concat();
            if to.write_all(&record).is_err() {
                break;
            }
            if target && tamper == Tamper::Replay {
                let _ = to.write_all(&record);
            }
            done |= target;
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
    Proxy { addr, captured }
}

fn frame_with(marker: &str) -> Vec<u8> {
    marker.as_bytes().iter().copied().cycle().take(5000).collect()
}

#[test]
fn a_flipped_byte_on_the_wire_ends_the_session() {
    let Pair { ta, tb, .. } = pair();
    let (addr, server) = serve_one(tb, |mut ch| ch.recv());
    let p = proxy(addr, Tamper::FlipAByte);
    let mut ch = ta.connect(p.addr).unwrap();
    ch.send(&frame_with("tamper-me")).unwrap();
    let got = server.join().unwrap().unwrap();
    let err = got.expect_err("a tampered frame was delivered").to_string();
    assert!(err.contains("failed authentication"), "{err}");
}

#[test]
fn a_replayed_record_ends_the_session() {
    let Pair { ta, tb, .. } = pair();
    let (addr, server) = serve_one(tb, |mut ch| (ch.recv(), ch.recv()));
    let p = proxy(addr, Tamper::Replay);
    let mut ch = ta.connect(p.addr).unwrap();
    let frame = frame_with("replay-me");
    ch.send(&frame).unwrap();
    let (first, second) = server.join().unwrap().unwrap();
    assert_eq!(first.unwrap().unwrap(), frame);
    let err = second.expect_err("a replayed frame was delivered twice").to_string();
    assert!(err.contains("failed authentication"), "{err}");
}

#[test]
fn a_capture_holds_no_plaintext_no_key_no_device_id() {
    let Pair { a, b, ta, tb } = pair();
    let (addr, server) = serve_one(tb, echo);
    let p = proxy(addr, Tamper::Nothing);
    let marker = format!("WIRE-CANARY-{:016x}", rand::random::<u64>());
    let mut ch = ta.connect(p.addr).unwrap();
    for f in [marker.as_bytes().to_vec(), frame_with(&marker)] {
        ch.send(&f).unwrap();
        assert_eq!(ch.recv().unwrap().unwrap(), f);
    }
    ch.close().unwrap();
    server.join().unwrap().unwrap().unwrap();
    thread::sleep(Duration::from_millis(100));
    let captured = p.captured.lock().unwrap().clone();
    assert!(captured.len() > 2 * 5000, "the capture missed the traffic ({} bytes)", captured.len());
    let find = |needle: &[u8]| captured.windows(needle.len()).any(|w| w == needle);
    // The detector works: the TLS record headers of the session are there.
    assert!(find(&[0x17, 0x03, 0x03]));
    let m = marker.as_bytes();
    for needle in [m, &m[..m.len() / 2], &m[m.len() / 2..]] {
        assert!(!find(needle), "the capture holds the marker in clear");
    }
    for d in [&a, &b] {
        assert!(!find(d.public_key_info()), "the capture holds a device's public key");
        assert!(!find(d.device_id().to_string().as_bytes()), "the capture holds a device id");
        assert!(!find(&d.device_id().as_bytes()[..]), "the capture holds a raw device id");
    }
}

#[test]
fn a_stalled_handshake_delays_no_one_and_then_times_out() {
    let a = DeviceIdentity::generate().unwrap();
    let b = DeviceIdentity::generate().unwrap();
    let ta = Transport::new(&a, TrustedPeers::new([b.device_id()]), options()).unwrap();
    let tb = Transport::new(&b, TrustedPeers::new([a.device_id()]), options().with_handshake_timeout(Duration::from_secs(3))).unwrap();
    let listener = tb.listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr();
    // Connects and says nothing.
    let _silent = TcpStream::connect(addr).unwrap();
    thread::sleep(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let client = thread::spawn(move || ta.connect(addr).map(|mut ch| ch.send(b"in time")));
    let mut first = listener.accept().unwrap();
    assert_eq!(first.peer(), a.device_id());
    assert!(started.elapsed() < Duration::from_secs(2), "the paired device waited behind the silent one");
    assert_eq!(first.recv().unwrap().unwrap(), b"in time");
    client.join().unwrap().unwrap().unwrap();
    let err = listener.accept().unwrap_err().to_string();
    assert!(err.contains("TLS handshake took longer than 3s"), "{err}");
}
