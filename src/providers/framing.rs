//! [`HeadGuard`]: the layer between an upstream connection's bytes and actix-http's HTTP/1 client, the one place
//! that sees each plain response head and follows each body's framing. It repairs two things actix-http gets
//! wrong, both of which lose or falsify answers:
//!
//! - An HTTP/1.1 body with neither `Content-Length` nor chunked `Transfer-Encoding` runs until the connection
//!   closes (RFC 9112 §6.3); actix-http gives it an empty body unless the response is HTTP/1.0
//!   (actix/actix-web#2287). The guard relabels exactly such heads as `HTTP/1.0` (one byte, same length), so
//!   actix-http reads the body to the close and does not reuse the connection.
//! - A connection that closes before a `Content-Length` or chunked body is complete ends actix-http's payload
//!   as if the answer were whole. The guard reports it as an error (`UnexpectedEof`), so a cut answer is a
//!   transport failure, never a short one.
//!
//! Everything else passes through untouched. It must not look inside bodies beyond their framing, and it knows
//! nothing of providers or TLS.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest response head the guard holds back while it looks for the head's end; past it bytes pass untouched.
const MAX_HEAD: usize = 64 * 1024;

/// Where in the exchange a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A request went out; the next bytes read begin a response head.
    Head,
    /// The head was handed on; bytes pass through while the body's framing is followed.
    Body(Framing),
}

/// How the body after a head ends, as far as the guard has followed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// `Content-Length`: this many bytes remain.
    Length(u64),
    /// Chunked transfer coding, at this point of its framing.
    Chunked(Chunk),
    /// Runs until the connection closes.
    UntilClose,
    /// Complete (or there was none): the next bytes belong to the next exchange.
    Done,
}

/// A point in chunked framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line: the size so far, and whether an extension (`;...`) started.
    Size { size: u64, extension: bool },
    /// Inside a chunk's data: this many bytes remain.
    Data(u64),
    /// After a chunk's data, before its line end.
    DataEnd,
    /// In the trailer section; whether the current line is still empty.
    Trailer { empty_line: bool },
}

impl Framing {
    /// Follows `bytes` of body; bytes past the body's end are not looked at.
    fn follow(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self {
                Framing::Length(left) => {
                    if skip(left, &mut bytes) {
                        *self = Framing::Done;
                    }
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    if skip(left, &mut bytes) {
                        *self = Framing::Chunked(Chunk::DataEnd);
                    }
                }
                Framing::Chunked(chunk) => {
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    if let Some(next) = chunk.step(byte) {
                        *self = next;
                    }
                }
                Framing::UntilClose | Framing::Done => return,
            }
        }
    }

    /// Whether the connection may end here without cutting the body short.
    fn may_end(self) -> bool {
        matches!(self, Framing::UntilClose | Framing::Done)
    }
}

/// Passes over up to `left` bytes of `bytes`; answers whether that was the last of them.
fn skip(left: &mut u64, bytes: &mut &[u8]) -> bool {
    let take = usize::try_from(*left).map_or(bytes.len(), |l| l.min(bytes.len()));
    *left -= take as u64;
    *bytes = &bytes[take..];
    *left == 0
}

impl Chunk {
    /// Takes one framing byte; answers with the framing's next state when it changes kind.
    fn step(&mut self, byte: u8) -> Option<Framing> {
        match self {
            Chunk::Size { size, extension } => match byte {
                b'\n' if *size == 0 => {
                    return Some(Framing::Chunked(Chunk::Trailer { empty_line: true }))
                }
                b'\n' => return Some(Framing::Chunked(Chunk::Data(*size))),
                b';' => *extension = true,
                _ if *extension => {}
                _ => {
                    if let Some(digit) = (byte as char).to_digit(16) {
                        *size = size.saturating_mul(16).saturating_add(u64::from(digit));
                    }
                }
            },
            Chunk::DataEnd => {
                if byte == b'\n' {
                    return Some(Framing::Chunked(Chunk::Size {
                        size: 0,
                        extension: false,
                    }));
                }
            }
            Chunk::Trailer { empty_line } => match byte {
                b'\n' if *empty_line => return Some(Framing::Done),
                b'\n' => *empty_line = true,
                b'\r' => {}
                _ => *empty_line = false,
            },
            Chunk::Data(_) => {}
        }
        None
    }
}

/// Holds back each response head until it is complete, relabels a close-delimited HTTP/1.1 head as HTTP/1.0,
/// follows the body's framing, and turns a close before the body's end into an error. awc never pipelines, so a
/// write after a complete body begins the next exchange.
pub struct HeadGuard<IO> {
    io: IO,
    state: State,
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
            state: State::Head,
            held: Vec::new(),
            ready: 0,
            taken: 0,
        }
    }

    /// The connection under the guard.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// Looks at the unfinished head in `held[ready..]`; once complete, decides it and hands it on with whatever
    /// body bytes came with it. Answers whether anything became ready.
    fn settle_head(&mut self) -> bool {
        let start = self.ready;
        let Some(end) = head_end(&self.held[start..]) else {
            let pending = &self.held[start..];
            if pending.len() > MAX_HEAD || !could_be_head(pending) {
                self.pass_rest(Framing::UntilClose);
                return true;
            }
            return false;
        };
        let head = &mut self.held[start..start + end];
        self.ready += end;
        match framing_of(head) {
            None => {}
            Some((framing, relabel)) => {
                if relabel {
                    head[7] = b'0';
                }
                self.pass_rest(framing);
            }
        }
        true
    }

    /// Everything held goes on as it is, as body bytes of `framing`.
    fn pass_rest(&mut self, mut framing: Framing) {
        framing.follow(&self.held[self.ready..]);
        self.ready = self.held.len();
        self.state = State::Body(framing);
    }
}

impl<IO: AsyncRead + Unpin> HeadGuard<IO> {
    /// With nothing held, reads the next bytes straight into `buf`: a head that arrives whole, with a final
    /// status, is decided where it lies and handed on with its body bytes, without a copy (the usual case).
    /// Anything else (an unfinished head, an interim one, no head) is taken back out of `buf` into `held` for
    /// [`Self::settle_head`]. Answers whether `buf` holds what to hand on (or the connection's end).
    fn read_whole_head(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<bool>> {
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        let fresh = &mut buf.filled_mut()[before..];
        if fresh.is_empty() {
            // The connection ended before a head: hand on the end; the parser reports it.
            self.state = State::Body(Framing::UntilClose);
            return Poll::Ready(Ok(true));
        }
        if let Some(end) = head_end(fresh) {
            if let Some((mut framing, relabel)) = framing_of(&fresh[..end]) {
                if relabel {
                    fresh[7] = b'0';
                }
                framing.follow(&fresh[end..]);
                self.state = State::Body(framing);
                return Poll::Ready(Ok(true));
            }
        }
        self.held.extend_from_slice(fresh);
        buf.set_filled(before);
        Poll::Ready(Ok(false))
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
            if let State::Body(framing) = &mut this.state {
                let before = buf.filled().len();
                return match Pin::new(&mut this.io).poll_read(cx, buf) {
                    Poll::Ready(Ok(())) if buf.filled().len() == before && !framing.may_end() => {
                        Poll::Ready(Err(cut_short()))
                    }
                    Poll::Ready(Ok(())) => {
                        framing.follow(&buf.filled()[before..]);
                        Poll::Ready(Ok(()))
                    }
                    other => other,
                };
            }
            if this.ready < this.held.len() && this.settle_head() {
                continue;
            }
            // (A reader with no room left would read nothing, which must not pass for the connection's end.)
            if this.held.is_empty() && buf.remaining() > 0 {
                match this.read_whole_head(cx, buf) {
                    Poll::Ready(Ok(true)) => return Poll::Ready(Ok(())),
                    Poll::Ready(Ok(false)) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let mut chunk = [0u8; 4096];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.io).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // The connection ended inside a head: hand on what came; the parser reports it.
                    this.pass_rest(Framing::UntilClose);
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
        if this.state == State::Body(Framing::Done) && this.taken == this.held.len() {
            this.state = State::Head;
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

fn cut_short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the upstream closed the connection before the end of its answer",
    )
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

/// How the body after `head` is framed, and whether the head must be relabelled HTTP/1.0 (an HTTP/1.1 body that
/// runs until the connection closes); `None` for an interim (1xx) head, after which another head follows.
/// RFC 9112 §6.3: chunked as the final coding wins over a length; without either the body runs to the close.
fn framing_of(head: &[u8]) -> Option<(Framing, bool)> {
    let status = status_of(head).unwrap_or(200);
    if (100..200).contains(&status) && status != 101 {
        return None;
    }
    if status == 204 || status == 304 || status == 101 {
        return Some((Framing::Done, false));
    }
    let mut length = None;
    let mut chunked = false;
    for line in head.split(|b| *b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            length = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok());
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    Some(match (chunked, length) {
        (true, _) => (
            Framing::Chunked(Chunk::Size {
                size: 0,
                extension: false,
            }),
            false,
        ),
        (false, Some(0)) => (Framing::Done, false),
        (false, Some(n)) => (Framing::Length(n), false),
        (false, None) => (Framing::UntilClose, head.starts_with(b"HTTP/1.1 ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// An in-memory connection: reads come in the scripted pieces (then the end), writes are counted.
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

    /// Everything a guard hands on until the scripted `pieces` end, or the error it ended with; read both through
    /// 7-byte buffers (every head held back and handed on in parts) and through 8 KiB ones (heads decided in the
    /// reader's buffer), which must agree.
    fn read_all(pieces: &[&str]) -> Result<String, String> {
        let small = read_through(&mut guard(pieces), 7);
        let large = read_through(&mut guard(pieces), 8192);
        assert_eq!(small, large, "{pieces:?}");
        large
    }

    /// Everything `guard` hands on until its connection ends, read through `size`-byte buffers.
    fn read_through(guard: &mut HeadGuard<Script>, size: usize) -> Result<String, String> {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        loop {
            let mut space = vec![0u8; size];
            let mut buf = ReadBuf::new(&mut space);
            match Pin::new(&mut *guard).poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
                Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
                Poll::Ready(Err(e)) => return Err(e.to_string()),
                Poll::Pending => return Err("pending".into()),
            }
        }
        Ok(String::from_utf8(out).unwrap_or_default())
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
            assert_eq!(read_all(&[a, b]), Ok(expected.clone()), "split at {split}");
        }
        let lf = "HTTP/1.1 200 OK\nContent-Type: text/event-stream\n\ndata: x\n\n";
        assert!(read_all(&[lf]).is_ok_and(|s| s.starts_with("HTTP/1.0 200 OK\n")));
        let gzip_only = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx";
        assert!(read_all(&[gzip_only]).is_ok_and(|s| s.starts_with("HTTP/1.0")));
    }

    #[test]
    fn complete_bodies_of_every_framing_pass_untouched() {
        for answer in [
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\ncontent-length:2\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n",
            "HTTP/1.1 200 OK\nTransfer-Encoding: gzip, Chunked\n\n3\nabc\n0\n\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\n\r\n",
            "HTTP/1.0 200 OK\r\n\r\nbody until close",
            "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nbody",
        ] {
            for piece in [1, 3, answer.len()] {
                let pieces: Vec<String> = answer
                    .as_bytes()
                    .chunks(piece)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
                assert_eq!(read_all(&pieces), Ok(answer.to_owned()), "{answer:?} in {piece}s");
            }
        }
    }

    #[test]
    fn a_body_cut_before_its_end_is_an_error() {
        for cut in [
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"id\":",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"id\":",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n",
        ] {
            let result = read_all(&[cut]);
            assert!(
                result.as_ref().is_err_and(|e| e.contains("before the end")),
                "{cut:?}: {result:?}"
            );
        }
    }

    #[test]
    fn an_interim_response_is_followed_by_the_real_head() {
        let both = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nbody";
        assert_eq!(
            read_all(&[both]),
            Ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nbody".to_owned())
        );
    }

    #[test]
    fn each_request_on_a_kept_connection_gets_its_head_looked_at() {
        let first = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nHTTP";
        let mut g = guard(&[first]);
        assert_eq!(
            read_through(&mut g, 7),
            Ok(first.to_owned()),
            "a body that looks like a head is a body"
        );
        write(&mut g);
        g.io.reads
            .push_back(b"HTTP/1.1 200 OK\r\n\r\nrest".to_vec());
        assert_eq!(
            read_through(&mut g, 8192),
            Ok("HTTP/1.0 200 OK\r\n\r\nrest".to_owned())
        );
        assert!(g.io.written > 0);
    }

    #[test]
    fn what_is_not_a_head_passes_through() {
        assert_eq!(
            read_all(&["garbage\r\n\r\n"]),
            Ok("garbage\r\n\r\n".to_owned())
        );
        assert_eq!(
            read_all(&["HTTP/1.1 200 O"]),
            Ok("HTTP/1.1 200 O".to_owned())
        );
        let huge = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(read_all(&[&huge]), Ok(huge.clone()));
    }
}
