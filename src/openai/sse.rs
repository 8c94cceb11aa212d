//! Server-Sent Events framing: an incremental parser for upstream streams and the frames the gateway writes.
//!
//! The parser follows the WHATWG event-stream rules on bytes as they arrive: events may be split anywhere (inside
//! a line, between `\r` and `\n`, inside a UTF-8 character); LF, CRLF and CR all end a line; comments, `id:`,
//! `retry:` and unknown fields are ignored; multi-line `data:` is joined with `\n`; a blank line dispatches.
//! It never interprets the data (that is the provider decoder's job) and bounds what it buffers so a hostile
//! upstream cannot exhaust memory.

use std::fmt;

/// Most bytes the parser buffers for one event (its unfinished line plus its data) before giving up.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;
/// The final frame of every stream the gateway writes.
pub const DONE: &[u8] = b"data: [DONE]\n\n";
/// The keep-alive comment frame written during long upstream silences.
pub const PING: &[u8] = b": ping\n\n";

/// One dispatched event, as the provider decoders consume it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if a non-empty one was given (Cohere names its events; OpenAI-style streams do not).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`, byte for byte.
    pub data: Vec<u8>,
}

/// Raised when an upstream event would make the parser buffer more than `MAX_EVENT_BYTES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseError;

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an event exceeded {MAX_EVENT_BYTES} bytes")
    }
}

impl std::error::Error for SseError {}

/// Incremental SSE parser: feed it network chunks, collect complete events.
///
/// After an `SseError` the stream is unusable and should be abandoned.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The unfinished line carried over from earlier pushes.
    line: Vec<u8>,
    /// The current event's data lines, already joined.
    data: Vec<u8>,
    /// Whether the current event has seen a `data` field (its data may still be empty).
    has_data: bool,
    /// The current event's name.
    event: Option<String>,
    /// The last push ended with `\r`, so a `\n` opening the next one completes that line ending.
    after_cr: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds bytes as they arrive, appending every event they complete to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.after_cr && !bytes.is_empty() {
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
                let taken = self.take_line(&line, out);
                line.clear();
                self.line = line;
                taken?;
            }
            bytes = match tail {
                [b'\r', b'\n', rest @ ..] => rest,
                [b'\r'] => {
                    self.after_cr = true;
                    &[]
                }
                [_, rest @ ..] => rest,
                [] => &[],
            };
        }
        if self.line.len() + self.data.len() + bytes.len() > MAX_EVENT_BYTES {
            return Err(SseError);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Ends the stream: flushes a last event the upstream did not close with a blank line, and resets the parser.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.after_cr = false;
        let line = std::mem::take(&mut self.line);
        let taken = if line.is_empty() {
            Ok(())
        } else {
            self.take_line(&line, out)
        };
        self.dispatch(out);
        taken
    }

    /// Interprets one complete line (without its ending).
    fn take_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let (field, value) = match line.iter().position(|&b| b == b':') {
            None if line.is_empty() => {
                self.dispatch(out);
                return Ok(());
            }
            Some(0) => return Ok(()),
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                let joint = usize::from(self.has_data);
                if self.data.len() + joint + value.len() > MAX_EVENT_BYTES {
                    return Err(SseError);
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event =
                    (!value.is_empty()).then(|| String::from_utf8_lossy(value).into_owned());
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends the current event: emits it if it had data, and forgets its name either way.
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

/// Frames one payload as `data: <payload>\n\n`; the payload must not contain a line break.
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
    use proptest::prelude::*;

    /// Parses `bytes` delivered in pieces ending at `cuts`; the events, or the first error.
    fn parse_in_pieces(bytes: &[u8], cuts: &[usize]) -> Result<Vec<SseEvent>, SseError> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        let mut start = 0;
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        ends.sort_unstable();
        for end in ends.into_iter().chain([bytes.len()]) {
            parser.push(&bytes[start..end.max(start)], &mut out)?;
            start = end.max(start);
        }
        parser.finish(&mut out)?;
        Ok(out)
    }

    /// SSE-ish bytes: field lines, comments, blank lines and CR/LF/CRLF endings, plus arbitrary bytes.
    fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            "data: \\PC{0,12}".prop_map(String::into_bytes),
            "data:\\PC{0,6}".prop_map(String::into_bytes),
            "event: [a-z-]{0,8}".prop_map(String::into_bytes),
            Just(b": keep-alive".to_vec()),
            Just(b"data: [DONE]".to_vec()),
            Just(b"id: 7".to_vec()),
            Just(Vec::new()),
            prop::collection::vec(any::<u8>(), 0..8),
        ];
        let ending = prop::sample::select(vec![&b"\n"[..], &b"\r\n"[..], &b"\r"[..]]);
        prop::collection::vec((line, ending), 0..16).prop_map(|lines| {
            lines
                .into_iter()
                .flat_map(|(mut l, e)| {
                    l.extend_from_slice(e);
                    l
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn how_bytes_are_split_never_changes_the_events(
            bytes in sse_bytes(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let whole = parse_in_pieces(&bytes, &[]);
            let split = parse_in_pieces(&bytes, &cuts);
            prop_assert_eq!(whole, split);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_in_pieces(&bytes, &[1, 17, 64]);
        }
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.as_bytes().to_vec(),
        }
    }

    fn d(data: &str) -> SseEvent {
        ev(None, data)
    }

    /// Feeds `parts` in order, then finishes.
    fn parse_parts(parts: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for part in parts {
            p.push(part, &mut out).unwrap();
        }
        p.finish(&mut out).unwrap();
        out
    }

    /// Every way of feeding `input` that the tests check gives the same events.
    fn assert_parses(name: &str, input: &[u8], expected: &[SseEvent]) {
        assert_eq!(parse_parts(&[input]), expected, "{name}: whole");
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            parse_parts(&bytewise),
            expected,
            "{name}: one byte at a time"
        );
        let with_empties: Vec<&[u8]> = input.chunks(1).flat_map(|b| [b, &[][..]]).collect();
        assert_eq!(
            parse_parts(&with_empties),
            expected,
            "{name}: with empty pushes"
        );
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let parts = [&input[..i], &input[i..j], &input[j..]];
                assert_eq!(
                    parse_parts(&parts),
                    expected,
                    "{name}: split at {i} and {j}"
                );
            }
        }
    }

    #[test]
    fn parses_every_framing_the_same_way_however_it_is_split() {
        let cases: Vec<(&str, &[u8], Vec<SseEvent>)> = vec![
            ("empty stream", b"", vec![]),
            ("blank lines only", b"\n\n\r\n\r\r", vec![]),
            (
                "lf",
                b"data: {\"a\":1}\n\ndata: [DONE]\n\n",
                vec![d("{\"a\":1}"), d("[DONE]")],
            ),
            (
                "crlf",
                b"data: x\r\n\r\ndata: y\r\n\r\n",
                vec![d("x"), d("y")],
            ),
            ("cr", b"data: x\r\rdata: y\r\r", vec![d("x"), d("y")]),
            (
                "mixed endings",
                b"data: a\r\ndata: b\rdata: c\n\r\n",
                vec![d("a\nb\nc")],
            ),
            (
                "lf then cr is two endings",
                b"data: a\n\rdata: b\n\n",
                vec![d("a"), d("b")],
            ),
            ("multi-line data", b"data: a\ndata: b\n\n", vec![d("a\nb")]),
            (
                "multi-line json",
                b"data: {\ndata: \"k\": 1\ndata: }\n\n",
                vec![d("{\n\"k\": 1\n}")],
            ),
            ("ping comment", b": ping\n\n", vec![]),
            (
                "openrouter comment",
                b": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: x\n\n",
                vec![d("x")],
            ),
            (
                "comment inside an event",
                b"data: a\n: note\ndata: b\n\n",
                vec![d("a\nb")],
            ),
            ("bare colon comment", b":\ndata: x\n\n", vec![d("x")]),
            (
                "named event",
                b"event: message-start\ndata: {}\n\n",
                vec![ev(Some("message-start"), "{}")],
            ),
            (
                "event name lasts one event",
                b"event: a\ndata: 1\n\ndata: 2\n\n",
                vec![ev(Some("a"), "1"), d("2")],
            ),
            (
                "last event name wins",
                b"event: a\nevent: b\ndata: 1\n\n",
                vec![ev(Some("b"), "1")],
            ),
            ("empty event name", b"event:\ndata: x\n\n", vec![d("x")]),
            ("event without colon", b"event\ndata: x\n\n", vec![d("x")]),
            (
                "event without data is dropped with its name",
                b"event: lonely\n\ndata: x\n\n",
                vec![d("x")],
            ),
            (
                "id, retry and unknown fields",
                b"id: 7\nretry: 10\nfoo: bar\ndata: x\n\n",
                vec![d("x")],
            ),
            ("field names are case-sensitive", b"Data: x\n\n", vec![]),
            ("leading space is not a field", b" data: x\n\n", vec![]),
            ("no space after colon", b"data:x\n\n", vec![d("x")]),
            ("only one space is stripped", b"data:  x \n\n", vec![d(" x ")]),
            ("colons in the value", b"data: a:b: c\n\n", vec![d("a:b: c")]),
            ("empty data", b"data:\n\n", vec![d("")]),
            ("data without colon", b"data\n\n", vec![d("")]),
            ("two empty data lines", b"data\ndata\n\n", vec![d("\n")]),
            ("tail without blank line", b"data: tail", vec![d("tail")]),
            (
                "multi-line tail",
                b"data: a\ndata: b",
                vec![d("a\nb")],
            ),
            ("tail ending in lf", b"data: a\n", vec![d("a")]),
            ("tail ending in cr", b"data: a\r", vec![d("a")]),
            ("tail event without data", b"event: x", vec![]),
            (
                "utf-8",
                "data: h\u{e9}llo \u{1F600}\n\n".as_bytes(),
                vec![d("h\u{e9}llo \u{1F600}")],
            ),
            (
                "openai stream",
                b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n: ping\n\ndata: {\"choices\":[],\"usage\":{}}\n\ndata: [DONE]\n\n",
                vec![
                    d("{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}"),
                    d("{\"choices\":[],\"usage\":{}}"),
                    d("[DONE]"),
                ],
            ),
            ("our done frame", DONE, vec![d("[DONE]")]),
            ("our ping frame", PING, vec![]),
        ];
        for (name, input, expected) in cases {
            assert_parses(name, input, &expected);
        }
    }

    #[test]
    fn passes_invalid_utf8_through_untouched() {
        let out = parse_parts(&[b"data: \xff\xfe\x00\n\n"]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, b"\xff\xfe\x00");
    }

    #[test]
    fn crlf_split_by_empty_pushes_is_one_line_ending() {
        let out = parse_parts(&[b"data: a\r", b"", b"", b"\ndata: b\r\n\r\n"]);
        assert_eq!(out, vec![d("a\nb")]);
    }

    #[test]
    fn events_come_out_as_soon_as_their_blank_line_arrives() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.push(b"data: 1\n\ndata: 2\n", &mut out).unwrap();
        assert_eq!(out, vec![d("1")]);
        p.push(b"\n", &mut out).unwrap();
        assert_eq!(out, vec![d("1"), d("2")]);
    }

    #[test]
    fn finish_resets_the_parser() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        p.push(b"event: x\ndata: a\r", &mut out).unwrap();
        p.finish(&mut out).unwrap();
        p.push(b"\ndata: b\n\n", &mut out).unwrap();
        assert_eq!(out, vec![ev(Some("x"), "a"), d("b")]);
    }

    #[test]
    fn an_unterminated_line_over_the_cap_is_refused() {
        let mut p = SseParser::new();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert_eq!(p.push(&big, &mut Vec::new()), Err(SseError));
    }

    #[test]
    fn a_line_growing_over_the_cap_across_pushes_is_refused() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let half = vec![b'a'; MAX_EVENT_BYTES / 2];
        p.push(b"data: ", &mut out).unwrap();
        p.push(&half, &mut out).unwrap();
        assert_eq!(p.push(&half, &mut out), Err(SseError));
        assert!(out.is_empty());
    }

    #[test]
    fn data_lines_adding_up_over_the_cap_are_refused() {
        let mut line = b"data: ".to_vec();
        line.extend(std::iter::repeat_n(b'a', 1024 * 1024));
        line.push(b'\n');
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let first_refused = (0..9).position(|_| p.push(&line, &mut out).is_err());
        assert_eq!(
            first_refused,
            Some(7),
            "eight 1 MiB lines and their joints pass 8 MiB"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn an_event_exactly_at_the_cap_passes_and_the_budget_is_per_event() {
        let mut line = b"data: ".to_vec();
        line.extend(std::iter::repeat_n(b'a', MAX_EVENT_BYTES - line.len()));
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for _ in 0..2 {
            p.push(&line, &mut out).unwrap();
            p.push(b"\n\n", &mut out).unwrap();
        }
        assert_eq!(out.len(), 2);
        assert!(out
            .iter()
            .all(|e| e.data.len() == MAX_EVENT_BYTES - b"data: ".len()));
    }

    #[test]
    fn a_long_comment_in_one_push_is_not_buffered() {
        let mut input = b": ".to_vec();
        input.extend(std::iter::repeat_n(b'c', MAX_EVENT_BYTES + 1));
        input.extend_from_slice(b"\ndata: x\n\n");
        assert_eq!(parse_parts(&[&input]), vec![d("x")]);
    }

    #[test]
    fn encodes_frames_that_parse_back() {
        assert_eq!(encode_data(b"{}"), b"data: {}\n\n");
        assert_eq!(encode_data(b""), b"data: \n\n");
        for payload in [&b"{\"a\":1}"[..], b"", b" leading space", b"[DONE]"] {
            assert_eq!(
                parse_parts(&[&encode_data(payload)]),
                vec![SseEvent {
                    event: None,
                    data: payload.to_vec()
                }]
            );
        }
    }
}
