//! What a client can hold of a node (SPEC §12): open connections per address and in total, and
//! how long a request's header may take to arrive. Without these, one address holding thousands
//! of half-sent requests (no CPU, no bandwidth) used up the process's file descriptors and every
//! user got timeouts.
//!
//! [`Guarded`] wraps the listener: a connection over either cap is closed at once, before any
//! byte is read; every other connection is counted until it closes. Its stream enforces the
//! header read timeout: from a request's first byte to the blank line that ends its header, at
//! most `header_timeout`, else the connection is closed. [`body_deadline`] bounds the time a
//! request's body may take to arrive; poem's idle timeout closes idle keep-alive connections.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The caps, and the live count per address.
#[derive(Debug)]
pub struct Limits {
    pub per_address: usize,
    pub total: usize,
    pub header_timeout: Duration,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Limits {
    pub fn new(per_address: usize, total: usize, header_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            per_address: per_address.max(1),
            total: total.max(1),
            header_timeout,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// A slot for a connection from `ip`, or `None` when a cap is reached.
    fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Option<Slot> {
        let mut open = self.open.lock().ok()?;
        if open.0 >= self.total {
            return None;
        }
        if let Some(ip) = ip {
            let n = open.1.entry(ip).or_default();
            if *n >= self.per_address {
                return None;
            }
            *n += 1;
        }
        open.0 += 1;
        Some(Slot {
            limits: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.open.lock().map(|o| o.0).unwrap_or(0)
    }
}

/// One admitted connection; its count is given back when the connection is dropped.
#[derive(Debug)]
struct Slot {
    limits: Arc<Limits>,
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.limits.open.lock() {
            open.0 = open.0.saturating_sub(1);
            if let Some(ip) = self.ip
                && let Some(n) = open.1.get_mut(&ip)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.1.remove(&ip);
                }
            }
        }
    }
}

/// The listener with the caps applied.
pub struct Guarded<A> {
    inner: A,
    limits: Arc<Limits>,
}

impl<A> Guarded<A> {
    pub fn new(inner: A, limits: Arc<Limits>) -> Self {
        Self { inner, limits }
    }
}

impl<A: Acceptor> Acceptor for Guarded<A> {
    type Io = GuardedIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        loop {
            let (io, local, remote, scheme) = self.inner.accept().await?;
            let ip = remote.as_socket_addr().map(|a| a.ip());
            match self.limits.admit(ip) {
                Some(slot) => {
                    let io = GuardedIo {
                        inner: io,
                        _slot: slot,
                        header_timeout: self.limits.header_timeout,
                        header: HeaderState::Idle,
                        deadline: None,
                    };
                    return Ok((io, local, remote, scheme));
                }
                // Over a cap: closed before a byte is read (dropping it closes the socket).
                None => {
                    tracing::warn!(
                        remote = ?ip,
                        "connection refused: too many open connections (from this address or in all)"
                    );
                    drop(io);
                }
            }
        }
    }
}

/// Where the connection is in reading a request's header: waiting for one, or inside one
/// (with how many bytes of the blank line that ends it were seen last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderState {
    Idle,
    /// In a header; the count is how much of `\r\n\r\n` the last bytes matched.
    Reading(u8),
    /// Past the header: the body or the response; a new request starts after a write.
    Done,
}

pub struct GuardedIo<Io> {
    inner: Io,
    _slot: Slot,
    header_timeout: Duration,
    header: HeaderState,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<Io> GuardedIo<Io> {
    /// Follows the bytes read: a request's first byte starts the header clock; the blank line
    /// stops it.
    fn saw(&mut self, bytes: &[u8]) {
        const END: &[u8; 4] = b"\r\n\r\n";
        for &b in bytes {
            let matched = match self.header {
                HeaderState::Done => return,
                HeaderState::Idle => {
                    self.deadline = Some(Box::pin(tokio::time::sleep_until(
                        Instant::now() + self.header_timeout,
                    )));
                    0
                }
                HeaderState::Reading(m) => m,
            };
            let next = if b == END[matched as usize] {
                matched + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            if next as usize == END.len() {
                self.header = HeaderState::Done;
                self.deadline = None;
                return;
            }
            self.header = HeaderState::Reading(next);
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for GuardedIo<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = buf.filled()[before..].to_vec();
                self.saw(&new);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                // Waiting for more of a header: only until its deadline.
                if let Some(d) = self.deadline.as_mut()
                    && d.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request header did not arrive in time",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for GuardedIo<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            // A response is going out: the next byte read starts a new request.
            self.header = HeaderState::Idle;
            self.deadline = None;
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.header = HeaderState::Idle;
            self.deadline = None;
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that must arrive whole by a deadline; past it, reading fails.
struct TimedBody<R> {
    inner: R,
    deadline: Pin<Box<Sleep>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for TimedBody<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending if self.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                )))
            }
            other => other,
        }
    }
}

/// Every request's body must arrive within `timeout` of the request reaching the endpoint (the
/// body read timeout of SPEC §12); a slower one fails to read, which the reader answers as a
/// bad request.
pub async fn body_deadline<E: poem::Endpoint>(
    ep: Arc<E>,
    mut req: poem::Request,
    timeout: Duration,
) -> poem::Result<poem::Response> {
    use poem::IntoResponse;
    let body = req.take_body();
    req.set_body(poem::Body::from_async_read(TimedBody {
        inner: body.into_async_read(),
        deadline: Box::pin(tokio::time::sleep(timeout)),
    }));
    ep.call(req).await.map(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn caps_per_address_and_in_total() {
        let l = Limits::new(2, 3, Duration::from_secs(1));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let s1 = l.admit(Some(a));
        let s2 = l.admit(Some(a));
        assert!(s1.is_some() && s2.is_some());
        assert!(l.admit(Some(a)).is_none(), "a third from one address");
        let s3 = l.admit(Some(b));
        assert!(s3.is_some());
        assert!(l.admit(Some(b)).is_none(), "a fourth in all");
        drop(s1);
        assert_eq!(l.open(), 2);
        assert!(l.admit(Some(a)).is_some(), "a slot given back is usable");
    }

    fn wrapped(
        io: tokio::io::DuplexStream,
        timeout: Duration,
    ) -> GuardedIo<tokio::io::DuplexStream> {
        let limits = Limits::new(10, 10, timeout);
        GuardedIo {
            inner: io,
            _slot: limits.admit(None).expect("slot"),
            header_timeout: timeout,
            header: HeaderState::Idle,
            deadline: None,
        }
    }

    #[tokio::test]
    async fn a_header_that_stops_halfway_times_out() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut server = wrapped(server, Duration::from_millis(100));
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 64];
        let n = server.read(&mut buf).await.expect("first bytes");
        assert!(n > 0);
        let started = std::time::Instant::now();
        let e = server.read(&mut buf).await.expect_err("times out");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_whole_header_stops_the_clock_and_an_idle_connection_has_none() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut server = wrapped(server, Duration::from_millis(50));
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 64];
        let _ = server.read(&mut buf).await.expect("header");
        assert_eq!(server.header, HeaderState::Done);
        // The handler takes its time; the body arrives later: no header clock runs.
        tokio::time::sleep(Duration::from_millis(120)).await;
        client.write_all(b"body").await.expect("write");
        assert_eq!(server.read(&mut buf).await.expect("body"), 4);
        server
            .write_all(b"HTTP/1.1 200 OK\r\n\r\n")
            .await
            .expect("answer");
        assert_eq!(server.header, HeaderState::Idle);
        // Split across reads, with \r\n\r\n straddling them.
        client
            .write_all(b"GET / HTTP/1.1\r\n\r")
            .await
            .expect("write");
        let _ = server.read(&mut buf).await.expect("part");
        client.write_all(b"\n").await.expect("write");
        let _ = server.read(&mut buf).await.expect("rest");
        assert_eq!(server.header, HeaderState::Done);
    }
}
