//! Function calls in Gemini answers, as OpenAI clients need them: every call the model made, once each, with an
//! id of its own (a synthesized id counts the call's place, so identical calls never share one), nameless closing
//! parts skipped, and arguments streamed as `partialArgs` (JSON-path pieces, which the gateway never asks for but
//! accepts) assembled into the complete arguments before the call is handed on. A client gets each call whole:
//! path pieces do not form a prefix of the arguments' JSON text, which is what OpenAI's argument deltas are.

use serde_json::{Map, Value};

/// One `functionCall` part as Gemini sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPart {
    /// The function's name; empty on a part that continues or closes the call before it.
    pub name: String,
    /// Complete arguments, when sent whole.
    pub args: Option<Value>,
    /// Streamed argument pieces (`{"jsonPath", "stringValue" | "numberValue" | ..., "willContinue"}`).
    pub partial: Vec<Value>,
    /// Whether more parts of this call follow.
    pub will_continue: bool,
    /// Gemini's id for the call, when it gave one.
    pub id: Option<String>,
    /// The part's thought signature.
    pub signature: Option<String>,
}

impl CallPart {
    /// Reads a part's `functionCall` (and the part's signature).
    pub fn read(part: &Value, call: &Value) -> CallPart {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        CallPart {
            name: text(call.get("name")).unwrap_or_default(),
            args: call.get("args").cloned(),
            partial: call
                .get("partialArgs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            will_continue: call.get("willContinue").and_then(Value::as_bool) == Some(true),
            id: text(call.get("id")),
            signature: text(part.get("thoughtSignature")),
        }
    }
}

/// A complete call: id, name, arguments (JSON text), thought signature.
pub type Call = (String, String, String, Option<String>);

/// Turns the `functionCall` parts of one answer, event by event, into complete calls.
#[derive(Debug, Default)]
pub struct Calls {
    /// Calls handed on so far.
    made: usize,
    /// A call whose arguments are still arriving.
    open: Option<Open>,
}

#[derive(Debug)]
struct Open {
    part: CallPart,
    args: Value,
    /// The path whose string value continues in the next piece.
    continuing: Option<String>,
}

impl Calls {
    /// Takes one event's call parts; answers with the calls that are complete.
    pub fn take(&mut self, parts: Vec<CallPart>) -> Vec<Call> {
        let mut done = Vec::new();
        for part in parts {
            if part.name.is_empty() {
                // A piece of the open call, or a nameless part closing a call already whole: never a call.
                if let Some(open) = &mut self.open {
                    open.apply(&part.partial);
                    if !part.will_continue {
                        done.extend(self.close());
                    }
                }
                continue;
            }
            done.extend(self.close());
            if part.will_continue || !part.partial.is_empty() {
                let mut open = Open {
                    args: part
                        .args
                        .clone()
                        .unwrap_or_else(|| Value::Object(Map::new())),
                    part,
                    continuing: None,
                };
                open.apply(&open.part.partial.clone());
                let finished = !open.part.will_continue;
                self.open = Some(open);
                if finished {
                    done.extend(self.close());
                }
            } else {
                let args = part
                    .args
                    .clone()
                    .unwrap_or_else(|| Value::Object(Map::new()));
                done.push(self.made_call(part, &args));
            }
        }
        done
    }

    /// The answer ended: a call still open is handed on with the arguments it has.
    pub fn finish(&mut self) -> Vec<Call> {
        self.close().into_iter().collect()
    }

    /// How many calls were handed on.
    pub fn count(&self) -> usize {
        self.made
    }

    fn close(&mut self) -> Option<Call> {
        let open = self.open.take()?;
        Some(self.made_call(open.part, &open.args))
    }

    fn made_call(&mut self, part: CallPart, args: &Value) -> Call {
        let arguments = args.to_string();
        let id = part
            .id
            .unwrap_or_else(|| synthesized_id(&part.name, &arguments, self.made));
        self.made += 1;
        (id, part.name, arguments, part.signature)
    }
}

impl Open {
    fn apply(&mut self, pieces: &[Value]) {
        for piece in pieces {
            let Some(path) = piece.get("jsonPath").and_then(Value::as_str) else {
                continue;
            };
            let value = ["stringValue", "numberValue", "boolValue"]
                .iter()
                .find_map(|k| piece.get(*k).cloned())
                .unwrap_or(Value::Null);
            let Some(slot) = slot_at(&mut self.args, path) else {
                continue;
            };
            match (
                &value,
                slot.as_str(),
                self.continuing.as_deref() == Some(path),
            ) {
                (Value::String(more), Some(so_far), true) => {
                    *slot = Value::String(format!("{so_far}{more}"));
                }
                _ => *slot = value,
            }
            let continues = piece.get("willContinue").and_then(Value::as_bool) == Some(true);
            self.continuing = continues.then(|| path.to_owned());
        }
    }
}

/// The value at a JSON path (`$.a.b[0]`, `$['a']`), created on the way.
fn slot_at<'v>(root: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    let mut rest = path.strip_prefix('$')?;
    let mut at = root;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            at = field(at, &after[..end]);
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let key = &after[..end];
            rest = &after[end + 1..];
            at = match key.parse::<usize>() {
                Ok(index) => {
                    if !at.is_array() {
                        *at = Value::Array(Vec::new());
                    }
                    let list = at.as_array_mut()?;
                    if list.len() <= index {
                        list.resize(index + 1, Value::Null);
                    }
                    &mut list[index]
                }
                Err(_) => field(at, key.trim_matches(['\'', '"'])),
            };
        } else {
            return None;
        }
    }
    Some(at)
}

fn field<'v>(at: &'v mut Value, name: &str) -> &'v mut Value {
    if !at.is_object() {
        *at = Value::Object(Map::new());
    }
    match at {
        Value::Object(map) => map.entry(name.to_owned()).or_insert(Value::Null),
        other => other,
    }
}

/// An id for a call Gemini gave none: the call's place in the answer, its name and arguments, so identical calls
/// in one answer get different ids and a stream and a whole answer agree.
pub fn synthesized_id(name: &str, arguments: &str, place: usize) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (name, arguments, place).hash(&mut h);
    format!("call_{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn part(call: Value) -> CallPart {
        CallPart::read(&json!({}), &call)
    }

    #[test]
    fn identical_calls_are_all_kept_with_ids_of_their_own() {
        let mut calls = Calls::default();
        let made = calls.take(vec![
            part(json!({"name": "read_screen", "args": {}})),
            part(json!({"name": "read_screen", "args": {}})),
        ]);
        assert_eq!(made.len(), 2);
        assert_ne!(made[0].0, made[1].0);
        assert_eq!((made[0].2.as_str(), made[1].2.as_str()), ("{}", "{}"));
        let given = calls.take(vec![part(json!({"name": "f", "id": "g1"}))]);
        assert_eq!(given[0].0, "g1");
    }

    #[test]
    fn a_nameless_closing_part_is_no_call() {
        let mut calls = Calls::default();
        let made = calls.take(vec![
            part(json!({"name": "f", "args": {"a": 1}})),
            part(json!({})),
        ]);
        assert_eq!(made.len(), 1);
        assert!(calls.finish().is_empty());
    }

    #[test]
    fn streamed_arguments_arrive_whole() {
        let mut calls = Calls::default();
        let first = calls.take(vec![part(json!({"name": "get_weather", "willContinue": true,
            "partialArgs": [{"jsonPath": "$.location", "stringValue": "Bos", "willContinue": true}]}))]);
        assert!(first.is_empty(), "not before its arguments are complete");
        let second = calls.take(vec![part(json!({"willContinue": true, "partialArgs": [
            {"jsonPath": "$.location", "stringValue": "ton"},
            {"jsonPath": "$.days", "numberValue": 3},
            {"jsonPath": "$.units[0]", "stringValue": "C"},
            {"jsonPath": "$['detail'].hourly", "boolValue": true}]}))]);
        assert!(second.is_empty());
        let done = calls.take(vec![part(json!({}))]);
        assert_eq!(done.len(), 1);
        let args: Value = serde_json::from_str(&done[0].2).unwrap_or_default();
        assert_eq!(
            args,
            json!({"location": "Boston", "days": 3, "units": ["C"], "detail": {"hourly": true}})
        );
        assert_eq!(done[0].1, "get_weather");
    }

    #[test]
    fn a_call_left_open_is_handed_on_at_the_end() {
        let mut calls = Calls::default();
        let _ = calls.take(vec![part(json!({"name": "f", "willContinue": true,
            "partialArgs": [{"jsonPath": "$.q", "stringValue": "x"}]}))]);
        let rest = calls.finish();
        assert_eq!((rest.len(), rest[0].2.as_str()), (1, r#"{"q":"x"}"#));
        assert_eq!(calls.count(), 1);
    }
}
