//! `freellmapi healthcheck`: asks a running server's `GET /healthz` and exits 0 only on `200 {"status":"ok"}`, so
//! a container image needs no curl or shell for its HEALTHCHECK. Plain blocking std networking: one request to our
//! own server does not need an async runtime.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long the whole check may take; container health checks run this every few seconds.
const TIMEOUT: Duration = Duration::from_secs(3);
/// The most of the answer that is read; `/healthz` answers in well under this.
const MAX_ANSWER_BYTES: u64 = 16 * 1024;

/// Where the server listens as seen from the same host: a wildcard listen address is reached over loopback.
pub fn local_address(host: IpAddr, port: u16) -> SocketAddr {
    let host = match host {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    SocketAddr::new(host, port)
}

/// Checks the server at `address`; `Err` says what was wrong, for the operator reading `docker inspect`.
pub fn check(address: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("cannot set timeouts: {e}"))?;
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nAccept: application/json\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send to {address}: {e}"))?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER_BYTES)
        .read_to_end(&mut answer)
        .map_err(|e| format!("no answer from {address}: {e}"))?;
    judge(&answer)
}

/// Decides from the raw HTTP answer whether the server is healthy.
fn judge(answer: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "the answer is not HTTP".to_owned())?;
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .ok_or_else(|| "the answer has no status line".to_owned())?;
    let ok = serde_json::from_str::<serde_json::Value>(body.trim())
        .ok()
        .is_some_and(|v| v["status"] == "ok");
    match (status, ok) {
        ("200", true) => Ok(()),
        _ => Err(format!("unhealthy: HTTP {status} {}", body.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_reached_over_loopback() {
        assert_eq!(
            local_address("0.0.0.0".parse().unwrap(), 3001),
            "127.0.0.1:3001".parse().unwrap()
        );
        assert_eq!(
            local_address("::".parse().unwrap(), 80),
            "[::1]:80".parse().unwrap()
        );
        assert_eq!(
            local_address("10.0.0.2".parse().unwrap(), 1),
            "10.0.0.2:1".parse().unwrap()
        );
    }

    #[test]
    fn only_200_with_status_ok_is_healthy() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"status\":\"ok\"}";
        assert_eq!(judge(ok), Ok(()));
        let down = b"HTTP/1.1 503 Service Unavailable\r\n\r\n{\"status\":\"unavailable\",\"error\":\"disk\"}";
        assert!(judge(down).unwrap_err().contains("503"));
        let odd = b"HTTP/1.1 200 OK\r\n\r\n<html>proxy page</html>";
        assert!(
            judge(odd).is_err(),
            "a 200 from something else is not our health"
        );
        assert!(judge(b"garbage").is_err());
    }
}
