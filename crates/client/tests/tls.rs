//! `wss://` (issue #14): the relay behind a TLS terminator — rustls with a
//! certificate from a self-signed test CA made here with rcgen — exactly
//! the "TLS at a proxy" deployment the docs describe. A client trusting
//! the CA syncs through it with a plain `ws://` client; a client that does
//! not trust it never connects (the handshake fails verification) and
//! keeps its edits local. Everything on 127.0.0.1; every wait bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use weft_client::{Backoff, Client, ClientEvent, ConnectionState, Error, SyncConfig, SyncStatus};
use weft_relay::{Relay, RelayConfig};

const WAIT: Duration = Duration::from_secs(15);

/// A test CA and a server certificate for 127.0.0.1 / localhost signed by
/// it: (CA PEM, server chain, server key).
fn test_pki() -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "weft test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("leaf params");
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    (
        ca_cert.pem(),
        vec![leaf.der().clone(), ca_cert.der().clone()],
        key,
    )
}

/// Terminates TLS on 127.0.0.1 and forwards each connection to `relay`.
async fn tls_terminator(
    relay: SocketAddr,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> SocketAddr {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses our certificate ends here.
                let Ok(Ok(mut tls)) = tokio::time::timeout(WAIT, acceptor.accept(socket)).await
                else {
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(relay).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    addr
}

fn body(doc: &weft_client::Replica) -> String {
    doc.read(|d| d.text("t").map(|t| t.to_string()).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_through_a_tls_terminator_with_a_test_ca() {
    let relay = Relay::start(RelayConfig::insecure_local())
        .await
        .expect("relay");
    let (ca_pem, chain, key) = test_pki();
    let tls_addr = tls_terminator(relay.local_addr(), chain, key).await;
    let wss = format!("wss://{tls_addr}/ws");

    // Trusting the test CA: syncs through TLS.
    let secure = Client::in_memory();
    let doc = secure.replica("tls-doc").unwrap();
    doc.transact(|tx| tx.text("t")?.insert(0, "over tls"))
        .unwrap();
    secure
        .connect(
            SyncConfig::new(&wss)
                .with_root_certificate_pem(ca_pem.clone())
                .with_system_roots(false),
        )
        .unwrap();
    assert!(doc.wait_synced(WAIT).await, "synced over wss://");
    // A plain ws:// client of the same relay sees it, and its edit
    // reaches the TLS client.
    let plain = Client::in_memory();
    plain
        .connect(SyncConfig::new(format!("ws://{}/ws", relay.local_addr())))
        .unwrap();
    let copy = plain.replica("tls-doc").unwrap();
    assert!(copy.wait_synced(WAIT).await);
    assert_eq!(body(&copy), "over tls");
    copy.transact(|tx| {
        let mut t = tx.text("t")?;
        let end = t.len();
        t.insert(end, " and back")
    })
    .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while body(&doc) != "over tls and back" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tls client receives"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Not trusting the CA (system roots only): the handshake fails, the
    // client never connects and backs off, edits stay local.
    let doubtful = Client::in_memory();
    let local = doubtful.replica("tls-doc").unwrap();
    local.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    let mut events = doubtful.events();
    let fast = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
    };
    let mut config = SyncConfig::new(&wss).with_backoff(fast);
    // The machine may have no system roots; an unrelated CA stands in.
    let (other_ca, _, _) = test_pki();
    config = config.with_root_certificate_pem(other_ca);
    doubtful.connect(config).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let reason = loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(ClientEvent::Disconnected { reason })) => break reason,
            Ok(Ok(ClientEvent::Connected { .. })) => panic!("connected to an untrusted relay"),
            Ok(_) => continue,
            Err(_) => panic!("no failed attempt within {WAIT:?}"),
        }
    };
    assert!(
        reason.to_lowercase().contains("certificate"),
        "fails on verification: {reason}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!matches!(
        *doubtful.connection().borrow(),
        ConnectionState::Connected { .. }
    ));
    assert_ne!(*local.status().borrow(), SyncStatus::Synced);
    assert_eq!(copy.read(|d| d.counter("n").unwrap()), 0, "nothing leaked");

    // Bad TLS settings are refused at connect, not per attempt.
    let bad = Client::in_memory();
    assert!(matches!(
        bad.connect(SyncConfig::new(&wss).with_root_certificate_pem("-----BEGIN NONSENSE")),
        Err(Error::Tls(_))
    ));
    assert!(matches!(
        bad.connect(SyncConfig::new(&wss).with_system_roots(false)),
        Err(Error::Tls(_))
    ));

    secure.disconnect().await;
    plain.disconnect().await;
    doubtful.disconnect().await;
    relay.shutdown().await;
}
