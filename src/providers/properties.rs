//! Property tests for everything that turns untrusted bytes into decisions: request parsing, every adapter's
//! request translation, answer decoding, stream decoding and error classification. Whatever the input, nothing
//! panics, and a rejection always carries a message.

use std::collections::HashMap;

use awc::http::header::HeaderMap;
use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::{Registry, Target};
use crate::config::Config;
use crate::openai::chat::ChatRequest;
use crate::openai::sse::SseEvent;
use crate::platform::Platform;

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with the `required` keys and any of the `optional` ones, values mostly well-typed (`typed`) and now
/// and then arbitrary.
fn object_of(
    required: &'static [&'static str],
    optional: &'static [&'static str],
    typed: fn(&str) -> BoxedStrategy<Value>,
) -> BoxedStrategy<Value> {
    let value = move |k: &'static str| {
        prop_oneof![19 => typed(k), 1 => any_json()].prop_map(move |v| (k.to_owned(), v))
    };
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = required
        .iter()
        .map(|&k| value(k).prop_map(Some).boxed())
        .chain(
            optional
                .iter()
                .map(|&k| prop::option::weighted(0.3, value(k)).boxed()),
        )
        .collect();
    fields
        .prop_map(|pairs| Value::Object(pairs.into_iter().flatten().collect::<Map<_, _>>()))
        .boxed()
}

fn message_field(key: &str) -> BoxedStrategy<Value> {
    match key {
        "role" => prop::sample::select(vec!["system", "developer", "user", "assistant", "tool"])
            .prop_map(Value::from)
            .boxed(),
        "content" => prop_oneof![
            "\\PC{0,40}".prop_map(Value::from),
            prop::collection::vec(content_part(), 0..4).prop_map(Value::Array),
        ]
        .boxed(),
        "tool_calls" => prop::collection::vec(tool_call(), 0..3)
            .prop_map(Value::Array)
            .boxed(),
        _ => "[a-zA-Z0-9_-]{0,12}".prop_map(Value::from).boxed(),
    }
}

fn content_part() -> BoxedStrategy<Value> {
    prop_oneof![
        "\\PC{0,20}".prop_map(|t| json!({"type": "text", "text": t})),
        prop::sample::select(vec![
            "data:image/png;base64,iVBORw0KGgo=",
            "data:image/jpeg;base64,!!notbase64",
            "https://example.invalid/cat.png",
            "data:",
        ])
        .prop_map(|u| json!({"type": "image_url", "image_url": {"url": u}})),
        any_json(),
    ]
    .boxed()
}

fn tool_call() -> BoxedStrategy<Value> {
    ("[a-z0-9_]{0,12}", "[a-z_]{0,10}", prop_oneof![Just("{}".to_owned()), "\\PC{0,20}"])
        .prop_map(|(id, name, args)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
        })
        .boxed()
}

fn request_field(key: &str) -> BoxedStrategy<Value> {
    match key {
        "model" => "[a-z0-9/._-]{1,20}".prop_map(Value::from).boxed(),
        "messages" => {
            const REQUIRED: &[&str] = &["role", "content"];
            const OPTIONAL: &[&str] = &["tool_calls", "tool_call_id", "name"];
            prop::collection::vec(object_of(REQUIRED, OPTIONAL, message_field), 1..5)
                .prop_map(Value::Array)
                .boxed()
        }
        "stream" | "parallel_tool_calls" | "logprobs" => any::<bool>().prop_map(Value::from).boxed(),
        "stream_options" => any::<bool>()
            .prop_map(|u| json!({"include_usage": u}))
            .boxed(),
        "max_tokens" | "max_completion_tokens" => (1i64..200_000).prop_map(Value::from).boxed(),
        "n" => Just(Value::from(1)).boxed(),
        "seed" => any::<i64>().prop_map(Value::from).boxed(),
        "temperature" | "top_p" | "frequency_penalty" | "presence_penalty" => {
            (-5.0f64..5.0).prop_map(Value::from).boxed()
        }
        "tools" => prop::collection::vec(
            ("[a-z_]{0,10}", any_json()).prop_map(|(name, params)| {
                json!({"type": "function", "function": {"name": name, "parameters": params}})
            }),
            0..3,
        )
        .prop_map(Value::Array)
        .boxed(),
        "tool_choice" => prop_oneof![
            prop::sample::select(vec!["auto", "none", "required"]).prop_map(Value::from),
            "[a-z_]{0,8}".prop_map(|n| json!({"type": "function", "function": {"name": n}})),
        ]
        .boxed(),
        "stop" => prop_oneof![
            "\\PC{0,8}".prop_map(Value::from),
            prop::collection::vec("\\PC{0,8}".prop_map(Value::from), 0..5).prop_map(Value::Array),
        ]
        .boxed(),
        "response_format" => prop::sample::select(vec!["text", "json_object", "json_schema"])
            .prop_map(|t| json!({"type": t}))
            .boxed(),
        _ => any_json().boxed(),
    }
}

/// A chat request: mostly well-shaped, with arbitrary values mixed in.
fn chat_request_json() -> BoxedStrategy<Value> {
    const REQUIRED: &[&str] = &["model", "messages"];
    const OPTIONAL: &[&str] = &[
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "user",
        "logprobs",
        "extra_field",
    ];
    object_of(REQUIRED, OPTIONAL, request_field)
}

fn registry() -> Registry {
    Registry::new(&Config::from_vars(&HashMap::new()).expect("the default configuration is valid"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn request_parsing_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(message) = ChatRequest::parse(&body) {
            prop_assert!(!message.is_empty());
        }
    }

    #[test]
    fn every_adapter_translates_any_parsed_request(body in chat_request_json()) {
        let request = match ChatRequest::parse(body.to_string().as_bytes()) {
            Ok(request) => request,
            Err(message) => {
                prop_assert!(!message.is_empty());
                return Ok(());
            }
        };
        let registry = registry();
        for platform in Platform::ALL {
            let Some(adapter) = registry.adapter(platform) else { continue };
            let target = Target {
                base_url: "http://127.0.0.1:9/v1",
                model: "some-model",
                secret: "ACCOUNT:TOKEN",
            };
            if let Err(message) = adapter.chat_request(&target, &request) {
                prop_assert!(!message.is_empty(), "{platform}");
            }
        }
    }

    #[test]
    fn every_adapter_survives_any_answer_event_and_error(
        answer in any_json(),
        events in prop::collection::vec(any_json(), 0..6),
        raw in prop::collection::vec(any::<u8>(), 0..64),
        status in 100u16..600,
        names in prop::collection::vec(prop::option::of("[a-z-]{1,16}"), 0..6),
    ) {
        let registry = registry();
        for platform in Platform::ALL {
            let Some(adapter) = registry.adapter(platform) else { continue };
            if let Err(failure) = adapter.decode_body("m", Bytes::from(answer.to_string())) {
                prop_assert!(!failure.message.is_empty(), "{platform}");
            }
            let _ = adapter.decode_body("m", Bytes::from(raw.clone()));
            let mut decoder = adapter.stream_decoder("m", true);
            let mut out = Vec::new();
            for (event, name) in events.iter().zip(names.iter().cycle()) {
                let event = SseEvent { event: name.clone(), data: event.to_string().into_bytes() };
                if decoder.event(event, &mut out).is_err() {
                    break;
                }
            }
            let _ = decoder.finish(&mut out);
            for chunk in &out {
                prop_assert!(serde_json::from_slice::<Value>(chunk).is_ok(), "{platform} relays JSON chunks");
            }
            let failure = adapter.classify(status, &HeaderMap::new(), &raw);
            prop_assert_eq!(failure.status, Some(status));
            let _ = adapter.classify(status, &HeaderMap::new(), answer.to_string().as_bytes());
            let _ = adapter.check_probe(&raw);
        }
    }
}
