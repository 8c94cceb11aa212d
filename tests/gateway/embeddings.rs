//! `/v1/embeddings` through the real server: an OpenAI-compatible platform, Gemini (`batchEmbedContents`) and
//! Cohere (`/v2/embed`) against mocks speaking their wire formats; float and base64 answers; failover that stays
//! within one model; `auto` and models of the other kind refused; tokens counted in budgets; the model list.

use serde_json::{json, Value};

use crate::support::client::{add_custom_key, add_platform_key, admin, budget_of, chat, send};
use crate::support::gateway::{Gateway, TOKEN};
use crate::support::mock::{Mock, Reply};
use crate::support::setup::gateway_on_mock;

async fn embed(gw: &Gateway, body: &Value) -> crate::support::client::Reply {
    send("POST", &gw.url("/v1/embeddings"), Some(TOKEN), Some(body)).await
}

fn openai_list(vectors: &[&[f64]], tokens: u32) -> Reply {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    Reply::body(
        200,
        json!({"object": "list", "data": data, "model": "e5-upstream",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
        .to_string(),
    )
}

fn embedding_model(id: &str) -> Value {
    json!([{"id": id, "type": "embedding", "tpm": 100000}])
}

#[actix_rt::test]
async fn an_openai_compatible_platform_embeds_in_floats_and_base64() {
    let (mock, gw) = gateway_on_mock(&[("k1", embedding_model("e5"))]).await;
    mock.push("k1", openai_list(&[&[0.5, -0.25], &[1.0, 0.0]], 6));
    let res = embed(
        &gw,
        &json!({"model": "e5", "input": ["first text", "second text"], "dimensions": 2, "input_type": "passage"}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-routed-via").as_deref(), Some("custom/e5"));
    let answer = res.json();
    assert_eq!(answer["object"], "list");
    assert_eq!(answer["model"], "e5");
    assert_eq!(answer["data"][0]["embedding"], json!([0.5, -0.25]));
    assert_eq!(answer["data"][1]["index"], 1);
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 6, "total_tokens": 6})
    );
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/embeddings");
    assert_eq!(
        seen.body,
        json!({"model": "e5", "input": ["first text", "second text"], "encoding_format": "float",
            "dimensions": 2, "input_type": "passage"})
    );
    mock.push("k1", openai_list(&[&[1.0, -2.0]], 2));
    let packed = embed(
        &gw,
        &json!({"model": "e5", "input": "one", "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(packed.status, 200, "{}", packed.text());
    assert_eq!(packed.json()["data"][0]["embedding"], "AACAPwAAAMA=");
    assert_eq!(
        mock.requests()[1].body["encoding_format"],
        "float",
        "upstreams are always asked for floats"
    );
    let budget = budget_of(&gw, "e5").await;
    assert_eq!(budget["tpm"]["used"], 8, "{budget}");
}

#[actix_rt::test]
async fn gemini_embeds_through_batch_embed_contents() {
    let mock = Mock::start();
    let base = format!("{}beta", mock.base_url());
    let gw = Gateway::start(&[("FREELLMAPI_BASE_URL_GOOGLE", &base)]);
    add_platform_key(&gw, "google", "AIza-embed-0001").await;
    mock.push(
        "AIza-embed-0001",
        Reply::body(
            200,
            json!({"embeddings": [{"values": [0.1, 0.2, 0.3]}, {"values": [0.4, 0.5, 0.6]}]})
                .to_string(),
        ),
    );
    let res = embed(
        &gw,
        &json!({"model": "gemini-embedding-001", "input": ["alpha", "beta"], "dimensions": 3}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let answer = res.json();
    assert_eq!(answer["data"][1]["embedding"], json!([0.4, 0.5, 0.6]));
    assert!(
        answer["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
        "Gemini counts nothing, so the estimate stands: {answer}"
    );
    let seen = &mock.requests()[0];
    assert_eq!(
        seen.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(
        seen.body["requests"][1],
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "beta"}]},
            "outputDimensionality": 3})
    );
}

#[actix_rt::test]
async fn cohere_embeds_natively_with_billed_tokens() {
    let mock = Mock::start();
    let base = mock.base_url().trim_end_matches("/v1").to_owned();
    let gw = Gateway::start(&[("FREELLMAPI_BASE_URL_COHERE", &base)]);
    add_platform_key(&gw, "cohere", "co-embed-0001").await;
    mock.push(
        "co-embed-0001",
        Reply::body(
            200,
            json!({"id": "e1", "embeddings": {"float": [[0.25, 0.75]]}, "texts": ["hello"],
                "meta": {"billed_units": {"input_tokens": 1}}})
            .to_string(),
        ),
    );
    let res = embed(
        &gw,
        &json!({"model": "cohere/embed-v4.0", "input": "hello", "input_type": "query"}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["data"][0]["embedding"], json!([0.25, 0.75]));
    assert_eq!(res.json()["usage"]["prompt_tokens"], 1);
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v2/embed");
    assert_eq!(
        seen.body,
        json!({"model": "embed-v4.0", "texts": ["hello"], "input_type": "search_query",
            "embedding_types": ["float"]})
    );
}

#[actix_rt::test]
async fn failover_stays_within_the_model_and_the_other_kind_is_refused() {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    add_custom_key(&gw, "k1", &mock.base_url(), embedding_model("e5")).await;
    add_custom_key(&gw, "k2", &mock.base_url(), embedding_model("e5")).await;
    add_custom_key(&gw, "k3", &mock.base_url(), embedding_model("other-embed")).await;
    add_custom_key(&gw, "k4", &mock.base_url(), json!(["chat-model"])).await;
    for key in ["k1", "k2"] {
        mock.push(key, Reply::error(500, "server_error", "boom"));
    }
    mock.push("k1", openai_list(&[&[1.0]], 1));
    mock.push("k2", openai_list(&[&[1.0]], 1));
    let res = embed(&gw, &json!({"model": "e5", "input": "x"})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("x-fallback-attempts").as_deref(),
        Some("2"),
        "both keys of e5 fail once; the second chance on e5 serves"
    );
    assert_eq!(mock.count_for("k3"), 0, "never another embedding model");
    assert_eq!(mock.count_for("k4"), 0, "never a chat model");

    let auto = embed(&gw, &json!({"model": "auto", "input": "x"})).await;
    assert_eq!(auto.status, 400);
    assert!(auto.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("'auto' is not allowed"));
    let chat_model = embed(&gw, &json!({"model": "chat-model", "input": "x"})).await;
    assert_eq!(chat_model.status, 400, "{}", chat_model.text());
    assert_eq!(chat_model.json()["error"]["code"], "model_type_mismatch");
    let embedding_as_chat = chat(
        &gw,
        &json!({"model": "e5", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(
        embedding_as_chat.status,
        400,
        "{}",
        embedding_as_chat.text()
    );
    assert_eq!(
        embedding_as_chat.json()["error"]["code"],
        "model_type_mismatch"
    );
    let unknown = embed(&gw, &json!({"model": "nope", "input": "x"})).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(mock.count_for("k4"), 0);
    let tokens_only = embed(&gw, &json!({"model": "e5", "input": [[1, 2, 3]]})).await;
    assert_eq!(tokens_only.status, 400);
    let chain = admin(
        &gw,
        "PUT",
        "/api/chain",
        Some(&json!([{"platform": "custom", "model": "e5", "enabled": true}])),
    )
    .await;
    assert_eq!(chain.status, 400, "the chain orders chat models only");
    assert!(chain.text().contains("embedding model"), "{}", chain.text());
}

#[actix_rt::test]
async fn the_model_list_shows_kinds_and_one_model_is_found_by_its_id() {
    let (_mock, gw) = gateway_on_mock(&[
        ("k1", embedding_model("e5")),
        ("k2", json!([{"id": "org/chat-1", "context": 32768}])),
    ])
    .await;
    let list = send("GET", &gw.url("/v1/models"), Some(TOKEN), None)
        .await
        .json();
    let find = |id: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {list}"))
    };
    assert_eq!(find("auto")["type"], "chat");
    assert_eq!(find("e5")["type"], "embedding");
    assert_eq!(find("org/chat-1")["context_window"], 32768);
    let one = send("GET", &gw.url("/v1/models/org/chat-1"), Some(TOKEN), None).await;
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["id"], "org/chat-1");
    assert_eq!(one.json()["object"], "model");
    let none = send("GET", &gw.url("/v1/models/gpt-9"), Some(TOKEN), None).await;
    assert_eq!(none.status, 404);
    assert_eq!(none.json()["error"]["code"], "model_not_found");
}

#[actix_rt::test]
async fn a_request_larger_than_a_platform_takes_is_sent_in_ordered_batches() {
    let mock = Mock::start();
    let base = format!("{}beta", mock.base_url());
    let gw = Gateway::start(&[("FREELLMAPI_BASE_URL_GOOGLE", &base)]);
    add_platform_key(&gw, "google", "AIza-embed-0002").await;
    let batch = |from: usize, to: usize| {
        let embeddings: Vec<Value> = (from..to).map(|i| json!({"values": [i as f64]})).collect();
        Reply::body(200, json!({ "embeddings": embeddings }).to_string())
    };
    mock.push("AIza-embed-0002", batch(0, 100));
    mock.push("AIza-embed-0002", batch(100, 150));
    let texts: Vec<String> = (0..150).map(|i| format!("text {i}")).collect();
    let res = embed(
        &gw,
        &json!({"model": "gemini-embedding-001", "input": texts}),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let data = res.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 150);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["index"], i);
        assert_eq!(item["embedding"], json!([i as f64]), "vector {i} in order");
    }
    let seen = mock.requests();
    assert_eq!(seen.len(), 2, "Gemini takes 100 texts a call");
    assert_eq!(
        seen[1].body["requests"][0]["content"]["parts"][0]["text"],
        "text 100"
    );
}

/// The official openai SDK (which asks for base64 and decodes it) and LangChain's `OpenAIEmbeddings`, set up as
/// the README says, read the gateway's answers as the vectors the upstream sent.
#[actix_rt::test]
async fn the_openai_sdk_and_langchain_read_the_vectors() {
    let (mock, gw) = gateway_on_mock(&[("k1", embedding_model("e5"))]).await;
    mock.push("k1", openai_list(&[&[0.5, 0.25], &[-1.0, 2.0]], 2));
    mock.push("k1", openai_list(&[&[0.125, 0.0]], 1));
    mock.push(
        "k1",
        openai_list(&[&[1.0, 0.0], &[0.0, 1.0], &[0.5, 0.5]], 3),
    );
    mock.push("k1", openai_list(&[&[0.75, -0.75]], 1));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/embeddings.py");
    let base = gw.url("/v1");
    let output = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args([base.as_str(), TOKEN, "e5"])
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("python3 is needed for the SDK tests ({e}); .ci/run installs it"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["sdk_base64"], json!([[0.5, 0.25], [-1.0, 2.0]]));
    assert_eq!(seen["sdk_float"], json!([0.125, 0.0]));
    assert_eq!(seen["sdk_usage"], 2);
    assert_eq!(
        seen["langchain_documents"],
        json!([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    );
    assert_eq!(seen["langchain_query"], json!([0.75, -0.75]));
    assert_eq!(seen["auto_refused"], 400);
    let requests = mock.requests();
    assert_eq!(requests[2].body["input"], json!(["one", "two", "three"]));
    assert!(requests
        .iter()
        .all(|r| r.body["encoding_format"] == "float"));
}
