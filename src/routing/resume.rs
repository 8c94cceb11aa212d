//! Continuing a broken stream: what the client has received so far ([`Partial`]), whether it can be continued,
//! and how a continuation is spliced on ([`Splice`]): relayed only once it is clear it continues the partial
//! answer rather than starting over, with the first answer's ids and one combined usage. Pure: OpenAI chunk JSON
//! in, chunk JSON out; no IO, no routing.

use std::borrow::Cow;

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::openai::chat::Usage;

/// How many characters of a continuation that repeat the partial answer's opening mean it started over: about two
/// words (fewer is a coincidence, say both begin with "The ").
const RESTART_OVERLAP: usize = 8;

/// The answer relayed so far, read from the OpenAI chunks the client received.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Partial {
    /// The text (`delta.content`) so far.
    pub text: String,
    /// Whether the answer already holds tool calls (those are never continued).
    pub tool_calls: bool,
    /// The first chunk's `id`, `model` and `created`, which every continuation chunk takes on.
    ids: Map<String, Value>,
}

impl Partial {
    /// Takes in one relayed chunk payload. Every chunk of every stream passes here, so it reads only what it
    /// needs, borrowing from the payload.
    pub fn observe(&mut self, chunk: &[u8]) {
        if self.ids.is_empty() {
            if let Ok(Value::Object(first)) = serde_json::from_slice::<Value>(chunk) {
                for key in ["id", "model", "created"] {
                    if let Some(v) = first.get(key) {
                        self.ids.insert(key.to_owned(), v.clone());
                    }
                }
            }
        }
        let Ok(view) = serde_json::from_slice::<ChunkView<'_>>(chunk) else {
            return;
        };
        let Some(delta) = view.choices.into_iter().next().and_then(|c| c.delta) else {
            return;
        };
        if let Some(text) = delta.content {
            self.text.push_str(&text);
        }
        if delta.tool_calls.is_some() {
            self.tool_calls = true;
        }
    }

    /// Whether another model may continue this answer: it has text, and no tool calls.
    pub fn resumable(&self) -> bool {
        !self.text.is_empty() && !self.tool_calls
    }
}

/// What [`Partial::observe`] reads of a chunk.
#[derive(Deserialize)]
struct ChunkView<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChoiceView<'a>>,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaView<'a>>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<IgnoredAny>,
}

/// `choices[0].delta` of a chunk.
fn delta_of(chunk: &Map<String, Value>) -> Option<&Map<String, Value>> {
    chunk.get("choices")?.get(0)?.get("delta")?.as_object()
}

/// What a continuation turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Spliced {
    /// Not known yet: its opening so far repeats the partial answer's.
    Undecided,
    /// It continues the answer: these chunks may go to the client.
    Continues(Vec<Bytes>),
    /// It started the answer over; nothing of it may reach the client.
    StartedOver,
}

/// Splices one continuation onto a partial answer.
#[derive(Debug)]
pub struct Splice {
    partial: String,
    ids: Map<String, Value>,
    /// Estimated tokens of the partial answer, added to the continuation's completion tokens.
    partial_tokens: u32,
    /// Continuation text seen while undecided, and its chunks, held back.
    opening: String,
    held: Vec<Map<String, Value>>,
    /// How many characters of the continuation's opening to drop (it echoed the partial answer).
    echo: Option<usize>,
}

impl Splice {
    /// A splice onto `partial`, whose text is estimated at `partial_tokens` tokens.
    pub fn new(partial: &Partial, partial_tokens: u32) -> Splice {
        Splice {
            partial: partial.text.clone(),
            ids: partial.ids.clone(),
            partial_tokens,
            opening: String::new(),
            held: Vec::new(),
            echo: None,
        }
    }

    /// Takes one continuation chunk payload.
    pub fn feed(&mut self, chunk: &[u8]) -> Spliced {
        let Ok(Value::Object(chunk)) = serde_json::from_slice::<Value>(chunk) else {
            return Spliced::Continues(Vec::new());
        };
        if self.echo.is_some() {
            return Spliced::Continues(self.rewrite(chunk).into_iter().collect());
        }
        if let Some(text) = delta_of(&chunk)
            .and_then(|d| d.get("content"))
            .and_then(Value::as_str)
        {
            self.opening.push_str(text);
        }
        self.held.push(chunk);
        self.decide(false)
    }

    /// The continuation ended: decides with what came.
    pub fn finish(&mut self) -> Spliced {
        if self.echo.is_some() {
            return Spliced::Continues(Vec::new());
        }
        self.decide(true)
    }

    /// Usage of the whole answer, from the continuation's (whose prompt held the partial answer).
    pub fn combined(&self, continuation: Usage) -> Usage {
        Usage {
            prompt_tokens: continuation
                .prompt_tokens
                .saturating_sub(self.partial_tokens),
            completion_tokens: continuation
                .completion_tokens
                .saturating_add(self.partial_tokens),
        }
    }

    fn decide(&mut self, ended: bool) -> Spliced {
        let opening = self.opening.as_str();
        let echo = if opening.is_empty() {
            if !ended {
                return Spliced::Undecided;
            }
            0
        } else if opening.starts_with(self.partial.as_str()) {
            // It repeated the partial answer and went on (some servers echo a prefill): keep what follows.
            self.partial.len()
        } else if self.partial.starts_with(opening) {
            if !ended {
                return Spliced::Undecided;
            }
            return Spliced::StartedOver;
        } else if common_prefix(opening, &self.partial) >= RESTART_OVERLAP.min(self.partial.len()) {
            return Spliced::StartedOver;
        } else {
            0
        };
        self.echo = Some(echo);
        let held = std::mem::take(&mut self.held);
        Spliced::Continues(held.into_iter().filter_map(|c| self.rewrite(c)).collect())
    }

    /// A continuation chunk as the client gets it: the first answer's ids, no second `role`, the echoed
    /// opening dropped, the usage combined. `None` when nothing is left of it.
    fn rewrite(&mut self, mut chunk: Map<String, Value>) -> Option<Bytes> {
        for (key, value) in &self.ids {
            chunk.insert(key.clone(), value.clone());
        }
        if let Some(usage) = chunk.get_mut("usage").filter(|u| u.is_object()) {
            let read = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
            let combined = self.combined(Usage {
                prompt_tokens: u32::try_from(read("prompt_tokens")).unwrap_or(u32::MAX),
                completion_tokens: u32::try_from(read("completion_tokens")).unwrap_or(u32::MAX),
            });
            usage["prompt_tokens"] = combined.prompt_tokens.into();
            usage["completion_tokens"] = combined.completion_tokens.into();
            usage["total_tokens"] = combined.total().into();
        }
        let delta = chunk
            .get_mut("choices")
            .and_then(|c| c.get_mut(0))
            .and_then(|c| c.get_mut("delta"))
            .and_then(Value::as_object_mut);
        if let Some(delta) = delta {
            delta.remove("role");
            let drop = self.echo.unwrap_or(0);
            if drop > 0 {
                if let Some(Value::String(text)) = delta.get_mut("content") {
                    let cut = floor_boundary(text, drop.min(text.len()));
                    self.echo = Some(drop - cut);
                    text.drain(..cut);
                    if text.is_empty() && cut > 0 {
                        delta.remove("content");
                    }
                }
            }
            let empty = delta.is_empty()
                && chunk
                    .get("choices")
                    .and_then(|c| c.get(0))
                    .is_some_and(|c| c.get("finish_reason").is_none_or(Value::is_null))
                && chunk.get("usage").is_none_or(Value::is_null);
            if empty {
                return None;
            }
        }
        serde_json::to_vec(&chunk).ok().map(Bytes::from)
    }
}

/// How many leading bytes two texts share, on a character boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .take_while(|((_, x), y)| x == y)
        .last()
        .map_or(0, |((i, c), _)| i + c.len_utf8())
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chunk(content: Option<&str>, finish: Option<&str>) -> Vec<u8> {
        let mut delta = json!({});
        if let Some(c) = content {
            delta["content"] = json!(c);
        }
        json!({"id": "second", "model": "other", "created": 2,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
        .into_bytes()
    }

    fn partial(texts: &[&str]) -> Partial {
        let mut partial = Partial::default();
        for (i, text) in texts.iter().enumerate() {
            let mut c: Value = serde_json::from_slice(&chunk(Some(text), None)).unwrap_or_default();
            c["id"] = json!("first");
            c["model"] = json!("m1");
            c["created"] = json!(1);
            if i == 0 {
                c["choices"][0]["delta"]["role"] = json!("assistant");
            }
            partial.observe(c.to_string().as_bytes());
        }
        partial
    }

    /// The text of spliced chunks, checking each carries the first answer's ids and no role.
    fn text_of(spliced: Spliced) -> String {
        let Spliced::Continues(chunks) = spliced else {
            panic!("not continued: {spliced:?}");
        };
        chunks
            .iter()
            .map(|c| {
                let v: Value = serde_json::from_slice(c).unwrap_or_default();
                assert_eq!(
                    (v["id"].clone(), v["model"].clone()),
                    (json!("first"), json!("m1"))
                );
                assert!(v["choices"][0]["delta"].get("role").is_none());
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn the_partial_answer_is_its_text_without_tool_calls() {
        let p = partial(&["The quick ", "brown "]);
        assert_eq!(p.text, "The quick brown ");
        assert!(p.resumable());
        let mut with_tools = p.clone();
        with_tools.observe(br#"{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}"#);
        assert!(!with_tools.resumable());
        assert!(!Partial::default().resumable(), "nothing to continue");
    }

    #[test]
    fn a_continuation_is_relayed_with_the_first_answers_ids() {
        let mut s = Splice::new(&partial(&["The quick brown "]), 4);
        assert_eq!(text_of(s.feed(&chunk(Some("fox"), None))), "fox");
        assert_eq!(
            text_of(s.feed(&chunk(Some(" jumps."), Some("stop")))),
            " jumps."
        );
    }

    #[test]
    fn an_echo_of_the_partial_answer_is_dropped_however_it_is_split() {
        let mut s = Splice::new(&partial(&["The quick brown "]), 4);
        assert_eq!(s.feed(&chunk(Some("The qu"), None)), Spliced::Undecided);
        assert_eq!(s.feed(&chunk(Some("ick brown"), None)), Spliced::Undecided);
        assert_eq!(text_of(s.feed(&chunk(Some(" fox"), None))), "fox");
        assert_eq!(text_of(s.feed(&chunk(Some(" jumps"), None))), " jumps");
    }

    #[test]
    fn a_restart_in_other_words_is_caught_by_its_opening() {
        let mut s = Splice::new(&partial(&["The quick brown "]), 4);
        assert_eq!(s.feed(&chunk(Some("The quick "), None)), Spliced::Undecided);
        assert_eq!(s.feed(&chunk(Some("red fox"), None)), Spliced::StartedOver);
    }

    #[test]
    fn a_fresh_answer_is_never_spliced_on() {
        let mut s = Splice::new(&partial(&["The quick brown fox "]), 5);
        assert_eq!(
            s.feed(&chunk(Some("The quick brown"), None)),
            Spliced::Undecided
        );
        assert_eq!(s.feed(&chunk(Some(" dog"), None)), Spliced::StartedOver);
        let mut short = Splice::new(&partial(&["The quick brown fox "]), 5);
        assert_eq!(
            short.feed(&chunk(Some("The quick"), None)),
            Spliced::Undecided
        );
        assert_eq!(
            short.finish(),
            Spliced::StartedOver,
            "a restart that stopped early"
        );
    }

    #[test]
    fn a_continuation_that_only_shares_a_word_is_a_continuation() {
        let mut s = Splice::new(&partial(&["The answer is"]), 3);
        assert_eq!(s.feed(&chunk(Some("The"), None)), Spliced::Undecided);
        assert_eq!(
            text_of(s.feed(&chunk(Some(" result"), None))),
            "The result",
            "a coincidence"
        );
        let mut silent_start = Splice::new(&partial(&["The answer is"]), 3);
        let role_only = br#"{"choices":[{"delta":{"role":"assistant"}}]}"#;
        assert_eq!(silent_start.feed(role_only), Spliced::Undecided);
        let mut empty = Splice::new(&partial(&["Done."]), 1);
        assert_eq!(empty.feed(&chunk(None, Some("stop"))), Spliced::Undecided);
        let Spliced::Continues(last) = empty.finish() else {
            panic!("an answer the model thinks complete ends as it is");
        };
        assert_eq!(last.len(), 1, "its finish_reason reaches the client");
    }

    #[test]
    fn usage_is_combined_over_both_answers() {
        let mut s = Splice::new(&partial(&["The quick brown "]), 4);
        let usage = json!({"id": "x", "choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 6, "total_tokens": 36}});
        let _ = s.feed(&chunk(Some("fox"), None));
        let Spliced::Continues(out) = s.feed(usage.to_string().as_bytes()) else {
            panic!("usage chunk withheld");
        };
        let v: Value = serde_json::from_slice(&out[0]).unwrap_or_default();
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 26, "completion_tokens": 10, "total_tokens": 36})
        );
    }
}
