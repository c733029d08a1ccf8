//! Slow clients cannot take the node down (SPEC §12): one address holding many half-sent
//! requests gets no more than its share of connections, the ones it holds are closed when the
//! header timeout passes, and another address signs in meanwhile.

use std::time::{Duration, Instant};

use iam_e2e::Db;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::signin::Ctx;

/// A connection from `ip` that sends half a request and then nothing.
async fn half_sent(ip: &str, to: std::net::SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{ip}:0").parse()?)?;
    let mut s = socket.connect(to).await?;
    s.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: iam\r\nContent-Type: application/x-www-")
        .await?;
    Ok(s)
}

/// Whether the server has closed `s` (EOF or reset) within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(wait, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        // A 4xx answer and then the close also counts as let go.
        Ok(Ok(_)) => matches!(
            tokio::time::timeout(wait, s.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        ),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holding_half_sent_requests_does_not_stop_sign_ins() -> anyhow::Result<()> {
    let mut c = Ctx::start(
        Db::sqlite()?,
        &[
            ("maxConnectionsPerAddress", "50"),
            ("headerTimeoutMs", "1500"),
        ],
    )
    .await?;
    let addr: std::net::SocketAddr = c.iam.base.trim_start_matches("http://").parse()?;

    // 50 half-sent requests from 127.0.0.2 are held; the 51st and later are closed at once.
    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(half_sent("127.0.0.2", addr).await?);
    }
    let started = Instant::now();
    let mut extra = half_sent("127.0.0.2", addr).await?;
    assert!(
        closed_within(&mut extra, Duration::from_millis(500)).await,
        "over the per-address cap: closed at once"
    );

    // Meanwhile another address (127.0.0.1) signs in, several times.
    for n in 0..5 {
        let a = c.sign_in_with(&format!("steady-{n}"), &[]).await?;
        assert_eq!(a.status, 200, "{}", a.text);
    }

    // The held connections are let go when the header timeout has passed.
    for s in held.iter_mut() {
        assert!(
            closed_within(s, Duration::from_secs(5)).await,
            "a half-sent request outlived the header timeout"
        );
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "closed after {took:?}");

    // Its slots are free again: the address can connect and be answered.
    let ok = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>()?)
        .build()?
        .get(c.iam.url("/healthz"))
        .send()
        .await?;
    assert_eq!(ok.status(), 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_is_refused_within_the_body_timeout() -> anyhow::Result<()> {
    let c = Ctx::start(Db::sqlite()?, &[("bodyTimeoutMs", "1000")]).await?;
    let addr: std::net::SocketAddr = c.iam.base.trim_start_matches("http://").parse()?;
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(
        b"POST /oauth/token HTTP/1.1\r\nHost: iam\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type",
    )
    .await?;
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    // Read until the server answers or closes; never beyond five seconds.
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "the stalled body was held {took:?}"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 400"),
        "refused, or closed: {text}"
    );
    Ok(())
}
