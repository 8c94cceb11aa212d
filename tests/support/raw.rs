//! An upstream that answers with exact bytes, over plain TCP or TLS: each connection reads one request (head and
//! `Content-Length` body), records its path, writes the next scripted answer byte for byte, in pieces with pauses,
//! and closes (a GET, a key probe, gets an empty model list instead). For framings an HTTP framework never
//! produces: close-delimited HTTP/1.1 bodies, HTTP/1.0, hand-made heads.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer: raw bytes sent in these pieces, with a pause between them.
#[derive(Clone, Debug)]
pub struct RawAnswer {
    /// The pieces, in order.
    pub pieces: Vec<Vec<u8>>,
    /// The pause between pieces.
    pub pause: Duration,
}

impl RawAnswer {
    /// An answer whose body ends when the connection closes: `version` (`HTTP/1.1` or `HTTP/1.0`), status 200,
    /// `content_type`, no length, then `body` in pieces of `piece` bytes.
    pub fn until_close(version: &str, content_type: &str, body: &str, piece: usize) -> RawAnswer {
        let head = format!(
            "{version} 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
        );
        let mut pieces = vec![head.into_bytes()];
        pieces.extend(body.as_bytes().chunks(piece.max(1)).map(<[u8]>::to_vec));
        RawAnswer {
            pieces,
            pause: Duration::from_millis(5),
        }
    }
}

#[derive(Default)]
struct State {
    answers: VecDeque<RawAnswer>,
    paths: Vec<String>,
}

/// The server; answers a connection with no script left with a 500 naming the fact.
pub struct RawUpstream {
    port: u16,
    state: Arc<Mutex<State>>,
    secure: bool,
}

impl RawUpstream {
    /// Listens on a free port in its own thread, plain HTTP.
    pub fn start() -> RawUpstream {
        RawUpstream::listen(None)
    }

    /// Listens on a free port in its own thread, HTTPS with a certificate for 127.0.0.1 from a fresh CA, whose
    /// certificate (PEM) is written to `ca_file`.
    pub fn start_tls(ca_file: &std::path::Path) -> RawUpstream {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        std::fs::write(ca_file, ca.pem()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], private)
        .unwrap();
        RawUpstream::listen(Some(Arc::new(config)))
    }

    fn listen(tls: Option<Arc<rustls::ServerConfig>>) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let secure = tls.is_some();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (state, tls) = (shared.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(conn, &state),
                    Some(config) => {
                        let Ok(session) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        let mut stream = rustls::StreamOwned::new(session, conn);
                        serve(&mut stream, &state);
                        stream.conn.send_close_notify();
                        let _ = stream.flush();
                    }
                });
            }
        });
        RawUpstream {
            port,
            state,
            secure,
        }
    }

    /// `http(s)://127.0.0.1:<port>`, without a path.
    pub fn origin(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Queues the answer for the next request.
    pub fn push(&self, answer: RawAnswer) {
        self.state.lock().unwrap().answers.push_back(answer);
    }

    /// The paths of the requests seen so far.
    pub fn paths(&self) -> Vec<String> {
        self.state.lock().unwrap().paths.clone()
    }
}

fn serve(mut conn: impl Read + Write, state: &Mutex<State>) {
    let mut reader = BufReader::new(&mut conn);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    drop(reader);
    if method == "GET" {
        // Key probes: answered without using up a script.
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"data\":[]}");
        return;
    }
    let answer = {
        let mut state = state.lock().unwrap();
        state.paths.push(path);
        state.answers.pop_front()
    };
    let answer = answer.unwrap_or_else(|| RawAnswer {
        pieces: vec![
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 11\r\n\r\nno script\n".to_vec(),
        ],
        pause: Duration::ZERO,
    });
    for (i, piece) in answer.pieces.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(answer.pause);
        }
        if conn.write_all(piece).is_err() {
            return;
        }
        let _ = conn.flush();
    }
}
