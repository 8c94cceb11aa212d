//! Server-Sent Events framing: an incremental parser for upstream streams and the frames the gateway writes.
//!
//! The parser works on bytes as they arrive (events may be split anywhere, even inside a UTF-8 character),
//! accepts LF, CRLF and CR line endings, ignores comments, `id:` and `retry:`, joins multi-line `data:` with
//! `\n`, and bounds how much it buffers so a hostile upstream cannot exhaust memory.

use std::fmt;

/// Most bytes one event (or one unterminated line) may take.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;
/// The final frame of every stream the gateway writes.
pub const DONE: &[u8] = b"data: [DONE]\n\n";
/// A keep-alive comment frame.
pub const PING: &[u8] = b": ping\n\n";

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: Vec<u8>,
}

/// The upstream sent an event larger than `MAX_EVENT_BYTES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseError;

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an event exceeded {MAX_EVENT_BYTES} bytes")
    }
}

impl std::error::Error for SseError {}

/// Incremental SSE parser.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    after_cr: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds bytes as they arrive, appending complete events to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = bytes.split_at(end);
            if self.line.is_empty() {
                self.take_line(head, out)?;
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.take_line(&line, out)?;
                line.clear();
                self.line = line;
            }
            bytes = if tail[0] == b'\r' {
                match tail.get(1) {
                    Some(b'\n') => &tail[2..],
                    Some(_) => &tail[1..],
                    None => {
                        self.after_cr = true;
                        &tail[1..]
                    }
                }
            } else {
                &tail[1..]
            };
        }
        if self.line.len() + bytes.len() > MAX_EVENT_BYTES {
            return Err(SseError);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Flushes a last event the stream did not end with a blank line.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.take_line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn take_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                if self.data.len() + value.len() > MAX_EVENT_BYTES {
                    return Err(SseError);
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if self.has_data {
            self.has_data = false;
            out.push(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

/// Frames one payload as `data: <payload>\n\n`.
pub fn encode_data(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_whole(input: &[u8]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.push(input, &mut out).unwrap();
        p.finish(&mut out).unwrap();
        out
    }

    fn parse_bytewise(input: &[u8]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for b in input {
            p.push(std::slice::from_ref(b), &mut out).unwrap();
        }
        p.finish(&mut out).unwrap();
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn framings_and_fields() {
        let cases: Vec<(&[u8], Vec<SseEvent>)> = vec![
            (
                b"data: {\"a\":1}\n\ndata: [DONE]\n\n",
                vec![ev(None, "{\"a\":1}"), ev(None, "[DONE]")],
            ),
            (
                b"data: x\r\n\r\ndata: y\r\n\r\n",
                vec![ev(None, "x"), ev(None, "y")],
            ),
            (
                b"data: x\r\rdata: y\r\r",
                vec![ev(None, "x"), ev(None, "y")],
            ),
            (
                b": OPENROUTER PROCESSING\n\ndata: x\n\n",
                vec![ev(None, "x")],
            ),
            (
                b"event: message-start\ndata: {}\n\n",
                vec![ev(Some("message-start"), "{}")],
            ),
            (b"data: a\ndata: b\n\n", vec![ev(None, "a\nb")]),
            (b"data:nospace\n\n", vec![ev(None, "nospace")]),
            (b"id: 7\nretry: 10\ndata: x\n\n", vec![ev(None, "x")]),
            (b"data\n\n", vec![ev(None, "")]),
            (b"event: lonely\n\n", vec![]),
            (
                b"data: tail-without-blank-line",
                vec![ev(None, "tail-without-blank-line")],
            ),
            (
                "data: h\u{e9}llo \u{1F600}\n\n".as_bytes(),
                vec![ev(None, "h\u{e9}llo \u{1F600}")],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_whole(input),
                expected,
                "whole: {:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(
                parse_bytewise(input),
                expected,
                "bytewise: {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn oversized_event_is_refused() {
        let mut p = SseParser::new();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert_eq!(p.push(&big, &mut Vec::new()), Err(SseError));
    }

    #[test]
    fn encodes_frames() {
        assert_eq!(encode_data(b"{}"), b"data: {}\n\n");
    }
}
