//! The connector under every ProviderActor's awc client: DNS and TCP (actix-tls), TLS (rustls, done here rather
//! than by awc), and [`HeadGuard`], the one layer that sees each plain response head before actix-http parses it.
//!
//! Why: actix-http's HTTP/1 client reads a response that declares no length (neither `Content-Length` nor chunked
//! `Transfer-Encoding`) to the end of the connection only when it is HTTP/1.0; an HTTP/1.1 one gets an empty body
//! (actix/actix-web#2287). Such close-delimited bodies are valid HTTP/1.1 (RFC 9112 §6.3) and simple servers send
//! them. The guard relabels exactly those heads as `HTTP/1.0`, same length, one byte, which makes actix-http read
//! the body to its end and close the connection afterwards, as the RFC asks. Nothing else on the wire changes.
//!
//! awc picks its TLS pool by the URL's scheme and would wrap our stream in its own TLS, hiding the plain head, so
//! requests travel to awc as `http://tls@host:port/...` ([`wire_url`]) and this connector does the handshake
//! (HTTP/1.1 only). It must not look at bodies, parse answers or know any provider.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_rt::net::{ActixStream, Ready, TcpStream};
use actix_service::Service;
use actix_tls::connect::rustls_0_23::reexports::{AsyncTlsStream, ClientConfig};
use actix_tls::connect::rustls_0_23::{webpki_roots_cert_store, TlsConnector};
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService};
use awc::http::Uri;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The user part of a URL that tells this connector to speak TLS (awc never sends it anywhere).
const TLS_MARK: &str = "tls@";
/// Longest response head the guard holds back while it looks for the head's end; past it bytes pass untouched.
const MAX_HEAD: usize = 64 * 1024;

/// The URL to hand awc for `url`: `https://host[:port]/p` becomes `http://tls@host:port/p`; others are unchanged.
pub fn wire_url(url: &str) -> Cow<'_, str> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Cow::Borrowed(url);
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.contains(']'));
    let port = if has_port { "" } else { ":443" };
    Cow::Owned(format!("http://{TLS_MARK}{host_port}{port}{path}"))
}

/// The TLS client settings every upstream connection shares: Mozilla's roots plus the certificates of
/// `extra_roots` (a PEM file), ring, HTTP/1.1 by ALPN. The error says what is wrong with the file.
pub fn tls_config(extra_roots: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = webpki_roots_cert_store();
    if let Some(path) = extra_roots {
        let unreadable = |e: &dyn fmt::Display| {
            format!(
                "UPSTREAM_CA_FILE={}: {e}. It must be a readable PEM file of CA certificates.",
                path.display()
            )
        };
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| unreadable(&e))?;
            roots.add(cert).map_err(|e| unreadable(&e))?;
            added += 1;
        }
        if added == 0 {
            return Err(unreadable(&"no certificate in it"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The connector service awc calls for every new upstream connection.
#[derive(Clone)]
pub struct UpstreamConnector {
    tcp: ConnectorService,
    tls: Arc<ClientConfig>,
}

impl UpstreamConnector {
    /// A connector resolving names with actix-tls's default resolver and speaking TLS with `tls`.
    pub fn new(tls: Arc<ClientConfig>) -> UpstreamConnector {
        UpstreamConnector {
            tcp: ConnectorService::default(),
            tls,
        }
    }
}

type ConnectFuture =
    Pin<Box<dyn Future<Output = Result<Connection<Uri, UpstreamIo>, ConnectError>>>>;

impl Service<ConnectInfo<Uri>> for UpstreamConnector {
    type Response = Connection<Uri, UpstreamIo>;
    type Error = ConnectError;
    type Future = ConnectFuture;

    actix_service::always_ready!();

    fn call(&self, info: ConnectInfo<Uri>) -> Self::Future {
        let secure = info
            .request()
            .authority()
            .is_some_and(|a| a.as_str().starts_with(TLS_MARK));
        let tcp = self.tcp.call(info);
        let tls = self.tls.clone();
        Box::pin(async move {
            let connection = tcp.await?;
            if !secure {
                let (stream, connection) = connection.replace_io(());
                let (_, connection) = connection.replace_io(UpstreamIo::new(Wire::Plain(stream)));
                return Ok(connection);
            }
            let connection = TlsConnector::service(tls)
                .call(connection)
                .await
                .map_err(ConnectError::Io)?;
            let (stream, connection) = connection.replace_io(());
            let (_, connection) =
                connection.replace_io(UpstreamIo::new(Wire::Tls(Box::new(stream))));
            Ok(connection)
        })
    }
}

/// A connection's byte stream, plain or TLS.
enum Wire {
    Plain(TcpStream),
    Tls(Box<AsyncTlsStream<TcpStream>>),
}

impl Wire {
    fn socket(&self) -> &TcpStream {
        match self {
            Wire::Plain(s) => s,
            Wire::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_flush(cx),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Wire::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An upstream connection as awc sees it: the wire under a [`HeadGuard`].
pub struct UpstreamIo(HeadGuard<Wire>);

impl UpstreamIo {
    fn new(wire: Wire) -> UpstreamIo {
        UpstreamIo(HeadGuard::new(wire))
    }
}

impl fmt::Debug for UpstreamIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0.io {
            Wire::Plain(_) => "plain",
            Wire::Tls(_) => "tls",
        };
        f.debug_struct("UpstreamIo").field("wire", &kind).finish()
    }
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl ActixStream for UpstreamIo {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_read_ready(self.0.io.socket(), cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_write_ready(self.0.io.socket(), cx)
    }
}

/// Where in the exchange a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A request went out; the next bytes read begin a response head.
    Head,
    /// The head was handed on; bytes pass straight through until the next request.
    Body,
}

/// Holds back each response head until it is complete, relabels a close-delimited HTTP/1.1 head as HTTP/1.0,
/// and passes everything else through untouched. awc never pipelines, so every write after a response's head
/// begins the next exchange.
pub struct HeadGuard<IO> {
    io: IO,
    phase: Phase,
    /// Bytes read but not handed on yet: `held[taken..ready]` may go; `held[ready..]` is an unfinished head.
    held: Vec<u8>,
    ready: usize,
    taken: usize,
}

impl<IO> HeadGuard<IO> {
    /// Guards a fresh connection (its first bytes will be a response head).
    pub fn new(io: IO) -> HeadGuard<IO> {
        HeadGuard {
            io,
            phase: Phase::Head,
            held: Vec::new(),
            ready: 0,
            taken: 0,
        }
    }

    /// Looks at the unfinished head in `held[ready..]`: once complete, decides it and marks it ready.
    fn settle_head(&mut self) -> bool {
        let start = self.ready;
        let Some(end) = head_end(&self.held[start..]) else {
            let pending = &self.held[start..];
            if pending.len() > MAX_HEAD || !could_be_head(pending) {
                self.pass_rest();
                return true;
            }
            return false;
        };
        let head = &mut self.held[start..start + end];
        let interim = status_of(head).is_some_and(|s| (100..200).contains(&s) && s != 101);
        if needs_close_delimiting(head) {
            head[7] = b'0';
        }
        self.ready += end;
        if !interim {
            self.pass_rest();
        }
        true
    }

    /// Everything held goes through as it is, until the next request.
    fn pass_rest(&mut self) {
        self.ready = self.held.len();
        self.phase = Phase::Body;
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for HeadGuard<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.taken < this.ready {
                let n = (this.ready - this.taken).min(buf.remaining());
                buf.put_slice(&this.held[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.held.len() {
                    this.held.clear();
                    this.ready = 0;
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.phase == Phase::Body {
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            if this.ready < this.held.len() && this.settle_head() {
                continue;
            }
            let mut chunk = [0u8; 4096];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.io).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // The connection ended inside a head: hand on what came; the parser reports it.
                    this.pass_rest();
                    if this.taken == this.ready {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Ok(())) => {
                    this.held.extend_from_slice(read.filled());
                    this.settle_head();
                }
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for HeadGuard<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.phase == Phase::Body && this.taken == this.held.len() {
            this.phase = Phase::Head;
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The length of the head at the start of `bytes` (through its blank line), once it is all there.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(nl) = bytes[at..].iter().position(|b| *b == b'\n') {
        let line_end = at + nl + 1;
        let line = &bytes[at..line_end];
        if at > 0 && (line == b"\n" || line == b"\r\n") {
            return Some(line_end);
        }
        at = line_end;
    }
    None
}

/// Whether bytes so far could still be the start of a response head (`HTTP/`).
fn could_be_head(bytes: &[u8]) -> bool {
    let n = bytes.len().min(5);
    bytes[..n] == b"HTTP/"[..n]
}

/// The status code of a response head.
fn status_of(head: &[u8]) -> Option<u16> {
    let code = head.get(9..12)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Whether `head` is an HTTP/1.1 response whose body runs until the connection closes: a status that carries a
/// body, no `Content-Length`, and no `Transfer-Encoding` ending in `chunked` (RFC 9112 §6.3).
fn needs_close_delimiting(head: &[u8]) -> bool {
    if !head.starts_with(b"HTTP/1.1 ") {
        return false;
    }
    match status_of(head) {
        Some(status) if status >= 200 && status != 204 && status != 304 => {}
        _ => return false,
    }
    let mut chunked = false;
    for line in head.split(|b| *b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            return false;
        }
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    !chunked
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// An in-memory connection: reads come in the scripted pieces, writes are counted.
    struct Script {
        reads: VecDeque<Vec<u8>>,
        written: usize,
    }

    impl AsyncRead for Script {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let reads = &mut self.get_mut().reads;
            if let Some(mut piece) = reads.pop_front() {
                let rest = piece.split_off(piece.len().min(buf.remaining()));
                buf.put_slice(&piece);
                if !rest.is_empty() {
                    reads.push_front(rest);
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Script {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().written += buf.len();
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn guard(pieces: &[&str]) -> HeadGuard<Script> {
        HeadGuard::new(Script {
            reads: pieces.iter().map(|p| p.as_bytes().to_vec()).collect(),
            written: 0,
        })
    }

    /// Everything the guard hands on until the scripted connection ends, read through a small buffer.
    fn read_all(guard: &mut HeadGuard<Script>) -> String {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        loop {
            let mut space = [0u8; 7];
            let mut buf = ReadBuf::new(&mut space);
            match Pin::new(&mut *guard).poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
                Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
                other => panic!("{other:?}"),
            }
        }
        String::from_utf8(out).unwrap_or_default()
    }

    fn write(guard: &mut HeadGuard<Script>) {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let _ = Pin::new(guard).poll_write(&mut cx, b"GET / HTTP/1.1\r\n\r\n");
    }

    const SSE: &str = "data: {}\n\ndata: [DONE]\n\n";

    #[test]
    fn a_close_delimited_http11_head_is_relabelled_whatever_the_pieces() {
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
        let whole = format!("{head}{SSE}");
        let expected = whole.replacen("HTTP/1.1", "HTTP/1.0", 1);
        for split in [1, 5, 9, 30, head.len() - 1, head.len(), head.len() + 3] {
            let (a, b) = whole.split_at(split);
            assert_eq!(read_all(&mut guard(&[a, b])), expected, "split at {split}");
        }
        let lf = "HTTP/1.1 200 OK\nContent-Type: text/event-stream\n\ndata: x\n\n";
        assert!(read_all(&mut guard(&[lf])).starts_with("HTTP/1.0 200 OK\n"));
    }

    #[test]
    fn heads_that_declare_their_length_pass_untouched() {
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\ncontent-length:2\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\n\r\n",
            "HTTP/1.0 200 OK\r\n\r\nbody until close",
        ] {
            assert_eq!(read_all(&mut guard(&[head])), head);
        }
        let gzip_only = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx";
        assert!(read_all(&mut guard(&[gzip_only])).starts_with("HTTP/1.0"));
    }

    #[test]
    fn an_interim_response_is_followed_by_the_real_head() {
        let both = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nbody";
        assert_eq!(
            read_all(&mut guard(&[both])),
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nbody"
        );
    }

    #[test]
    fn each_request_on_a_kept_connection_gets_its_head_looked_at() {
        let first = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nHTTP";
        let mut g = guard(&[first]);
        assert_eq!(
            read_all(&mut g),
            first,
            "a body that looks like a head is a body"
        );
        write(&mut g);
        g.io.reads
            .push_back(b"HTTP/1.1 200 OK\r\n\r\nrest".to_vec());
        assert_eq!(read_all(&mut g), "HTTP/1.0 200 OK\r\n\r\nrest");
        assert!(g.io.written > 0);
    }

    #[test]
    fn what_is_not_a_head_passes_through() {
        assert_eq!(
            read_all(&mut guard(&["garbage\r\n\r\n"])),
            "garbage\r\n\r\n"
        );
        assert_eq!(read_all(&mut guard(&["HTTP/1.1 200 O"])), "HTTP/1.1 200 O");
        let huge = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(read_all(&mut guard(&[&huge])), huge);
    }

    #[test]
    fn https_urls_are_marked_for_this_connector() {
        assert_eq!(
            wire_url("http://127.0.0.1:9/v1/x"),
            "http://127.0.0.1:9/v1/x"
        );
        assert_eq!(
            wire_url("https://api.groq.com/openai/v1/chat/completions"),
            "http://tls@api.groq.com:443/openai/v1/chat/completions"
        );
        assert_eq!(wire_url("https://h:8443?q=1"), "http://tls@h:8443?q=1");
        assert_eq!(wire_url("https://[::1]/v1"), "http://tls@[::1]:443/v1");
        assert_eq!(wire_url("https://u:p@h/v1"), "http://tls@h:443/v1");
        let uri: Uri = wire_url("https://api.groq.com/v1").parse().unwrap();
        assert_eq!(uri.host(), Some("api.groq.com"));
        assert_eq!(uri.port_u16(), Some(443));
    }
}
