//! The connector under every ProviderActor's awc client: DNS and TCP (actix-tls), TLS (rustls, done here rather
//! than by awc), and on top the [`HeadGuard`] that repairs actix-http's handling of response framing (see
//! `framing.rs`); the guard must see plain bytes, so TLS has to happen below it.
//!
//! awc picks its TLS pool by the URL's scheme and would wrap our stream in its own TLS, so requests travel to awc
//! as `http://tls@host:port/...` ([`wire_url`]) and this connector does the handshake (HTTP/1.1 by ALPN). It must
//! not look at bodies, parse answers or know any provider.

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

use super::framing::HeadGuard;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The user part of a URL that tells this connector to speak TLS (awc never sends it anywhere).
const TLS_MARK: &str = "tls@";

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
                let (_, connection) = connection.replace_io(HeadGuard::new(Wire::Plain(stream)));
                return Ok(connection);
            }
            let connection = TlsConnector::service(tls)
                .call(connection)
                .await
                .map_err(ConnectError::Io)?;
            let (stream, connection) = connection.replace_io(());
            let (_, connection) =
                connection.replace_io(HeadGuard::new(Wire::Tls(Box::new(stream))));
            Ok(connection)
        })
    }
}

/// A connection's byte stream, plain or TLS.
pub enum Wire {
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
pub type UpstreamIo = HeadGuard<Wire>;

impl fmt::Debug for HeadGuard<Wire> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.get_ref() {
            Wire::Plain(_) => "plain",
            Wire::Tls(_) => "tls",
        };
        f.debug_struct("UpstreamIo").field("wire", &kind).finish()
    }
}

impl ActixStream for HeadGuard<Wire> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_read_ready(self.get_ref().socket(), cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_write_ready(self.get_ref().socket(), cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
