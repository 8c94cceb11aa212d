//! One field for reasoning. OpenAI-compatible servers hand a model's reasoning over in several shapes: Mistral's
//! content parts (`{"type":"thinking","thinking":[...]}` beside `{"type":"text"}`), Groq's and OpenRouter's
//! `reasoning` field, and `<think>...</think>` at the start of the text. Every answer the gateway relays carries it
//! in `reasoning_content` too (the provider's own field stays where it has one), and `content` is plain text.
//! Pure transforms of one message or delta; deciding whether an answer needs one at all is the caller's job.

use serde_json::{Map, Value};

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// Where an answer is with respect to `<think>` tags, which only open an answer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No text yet (or only white space).
    #[default]
    Start,
    /// Inside `<think>`: text is reasoning.
    Inside,
    /// Just past `</think>`: the line breaks that follow it are dropped.
    Closed,
    /// Past the reasoning, or there was none: text is text.
    Text,
}

/// Follows `<think>` tags across the pieces of one answer (a whole message, or a stream's deltas).
#[derive(Debug, Default)]
pub struct Think {
    phase: Phase,
    /// The end of the reasoning so far that may be the start of `</think>`, held back until it is clear.
    carry: String,
}

impl Think {
    /// Whether a piece of text needs splitting: it opens or continues `<think>`. Moves past the start on the
    /// first text that does not open it, so later pieces are answered without a look.
    pub fn needs(&mut self, text: &str) -> bool {
        match self.phase {
            Phase::Text => false,
            Phase::Inside | Phase::Closed => true,
            Phase::Start => {
                let trimmed = text.trim_start();
                if trimmed.is_empty() {
                    return false;
                }
                if trimmed.starts_with(OPEN) {
                    return true;
                }
                self.phase = Phase::Text;
                false
            }
        }
    }

    /// Splits a piece of text into (reasoning, text).
    pub fn split(&mut self, text: &str) -> (String, String) {
        let mut rest = text;
        if self.phase == Phase::Start {
            let trimmed = text.trim_start();
            if let Some(after) = trimmed.strip_prefix(OPEN) {
                self.phase = Phase::Inside;
                rest = after;
            } else if !trimmed.is_empty() {
                self.phase = Phase::Text;
            }
        }
        match self.phase {
            Phase::Inside => {}
            Phase::Closed => return (String::new(), self.after_close(rest)),
            Phase::Start | Phase::Text => return (String::new(), rest.to_owned()),
        }
        let mut pending = std::mem::take(&mut self.carry);
        pending.push_str(rest);
        if let Some(at) = pending.find(CLOSE) {
            self.phase = Phase::Closed;
            let text = self.after_close(&pending[at + CLOSE.len()..]);
            pending.truncate(at);
            return (pending, text);
        }
        let keep = (1..CLOSE.len())
            .rev()
            .find(|n| pending.ends_with(&CLOSE[..*n]))
            .unwrap_or(0);
        self.carry = pending.split_off(pending.len() - keep);
        (pending, String::new())
    }

    /// Text just after `</think>`, without the line breaks that separate it from the reasoning.
    fn after_close(&mut self, text: &str) -> String {
        let text = text.trim_start_matches(['\r', '\n']);
        if !text.is_empty() {
            self.phase = Phase::Text;
        }
        text.to_owned()
    }

    /// The answer ended: reasoning held back while waiting for `</think>`.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.carry)
    }
}

/// Fits one message or delta: `content` as text, the reasoning (from Mistral's thinking parts, a `reasoning`
/// field, or `<think>` tags) also in `reasoning_content`. `whole` for a complete message, whose reasoning may end
/// in what looked like the start of a closing tag.
pub fn carry_reasoning(turn: &mut Map<String, Value>, think: &mut Think, whole: bool) {
    let mut reasoning = String::new();
    if let Some(Value::Array(parts)) = turn.get("content") {
        let (text, thinking) = split_parts(parts);
        reasoning.push_str(&thinking);
        turn.insert("content".into(), Value::String(text));
    }
    if !turn.contains_key("reasoning_content") {
        if let Some(Value::String(field)) = turn.get("reasoning") {
            reasoning.push_str(field);
        }
    }
    if let Some(Value::String(text)) = turn.get_mut("content") {
        if think.needs(text) {
            let (thought, rest) = think.split(text);
            reasoning.push_str(&thought);
            *text = rest;
        }
    }
    if whole {
        reasoning.push_str(&think.finish());
    }
    if !reasoning.is_empty() {
        match turn.get_mut("reasoning_content") {
            Some(Value::String(existing)) => existing.push_str(&reasoning),
            _ => {
                turn.insert("reasoning_content".into(), Value::String(reasoning));
            }
        }
    }
}

/// The text and the thinking of Mistral-style content parts.
fn split_parts(parts: &[Value]) -> (String, String) {
    let (mut text, mut thinking) = (String::new(), String::new());
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("thinking") => match part.get("thinking") {
                Some(Value::Array(inner)) => thinking.push_str(&split_parts(inner).0),
                Some(Value::String(s)) => thinking.push_str(s),
                _ => {}
            },
            Some("text") | None => {
                if let Some(s) = part.get("text").and_then(Value::as_str) {
                    text.push_str(s);
                }
            }
            Some(_) => {}
        }
    }
    (text, thinking)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fitted(turn: Value) -> Value {
        let Value::Object(mut turn) = turn else {
            return Value::Null;
        };
        carry_reasoning(&mut turn, &mut Think::default(), true);
        Value::Object(turn)
    }

    #[test]
    fn mistral_parts_become_text_and_reasoning() {
        let turn = json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": [{"type": "text", "text": "Two and two."}]},
            {"type": "text", "text": "It is 4."}]});
        assert_eq!(
            fitted(turn),
            json!({"role": "assistant", "content": "It is 4.", "reasoning_content": "Two and two."})
        );
    }

    #[test]
    fn a_reasoning_field_is_kept_and_copied() {
        assert_eq!(
            fitted(json!({"content": "4", "reasoning": "2+2"})),
            json!({"content": "4", "reasoning": "2+2", "reasoning_content": "2+2"})
        );
        assert_eq!(
            fitted(json!({"content": "4", "reasoning": "x", "reasoning_content": "y"})),
            json!({"content": "4", "reasoning": "x", "reasoning_content": "y"}),
            "a server that sends both is left alone"
        );
    }

    #[test]
    fn think_tags_at_the_start_are_reasoning() {
        assert_eq!(
            fitted(json!({"content": "<think>\nhmm\n</think>\n\nIt is 4."})),
            json!({"content": "It is 4.", "reasoning_content": "\nhmm\n"})
        );
        assert_eq!(
            fitted(json!({"content": "Use <think> tags like this"})),
            json!({"content": "Use <think> tags like this"}),
            "a tag later in the text is text"
        );
    }

    #[test]
    fn think_tags_split_across_deltas_are_followed() {
        let mut think = Think::default();
        let mut out = (String::new(), String::new());
        for piece in [
            "  ",
            "<think>Let",
            " me see</th",
            "ink>",
            "\n\nIt is",
            " 4.",
        ] {
            if think.needs(piece) {
                let (r, t) = think.split(piece);
                out.0.push_str(&r);
                out.1.push_str(&t);
            } else {
                out.1.push_str(piece);
            }
        }
        assert_eq!(out, ("Let me see".to_owned(), "  It is 4.".to_owned()));
        let mut plain = Think::default();
        assert!(!plain.needs("Hello"));
        assert!(
            !plain.needs("<think>later</think>"),
            "only an answer's opening counts"
        );
    }

    #[test]
    fn an_unclosed_tag_keeps_its_held_back_end() {
        let mut think = Think::default();
        assert!(think.needs("<think>cut off at </thi"));
        assert_eq!(
            think.split("<think>cut off at </thi"),
            ("cut off at ".to_owned(), String::new())
        );
        assert_eq!(think.finish(), "</thi");
    }
}
