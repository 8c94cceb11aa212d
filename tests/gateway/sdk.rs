//! The official openai Python SDK (pinned in `.ci/run`) reads every conformance fixture of every platform
//! through the gateway: text, tool calls (all of them, each with its own id), reasoning in `reasoning_content`,
//! finish reasons, usage-only final chunks and errors, as a client really sees them.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

use crate::conformance::{add_keyed, every_platform_on, fixtures, upstream_reply, PLATFORMS};
use crate::support::client::admin;
use crate::support::gateway::TOKEN;
use crate::support::mock::Mock;

/// One `tests/sdk/*.py` driver process: a case per line in, what the SDK saw per line out.
pub(crate) struct Sdk {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Sdk {
    fn start() -> Sdk {
        Sdk::driver("replay.py")
    }

    /// Starts the driver `tests/sdk/<script>`.
    pub(crate) fn driver(script: &str) -> Sdk {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sdk")
            .join(script);
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("python3 is needed for the SDK tests ({e}); .ci/run installs it")
            });
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Sdk {
            child,
            input,
            output,
        }
    }

    fn run(&mut self, base_url: &str, request: &Value) -> Value {
        self.ask(&json!({"base_url": base_url, "api_key": TOKEN, "request": request}))
    }

    /// Hands the driver one case and answers what it printed for it.
    pub(crate) fn ask(&mut self, case: &Value) -> Value {
        writeln!(self.input, "{case}").unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!("the SDK script said {line:?} ({e}); is openai installed? (.ci/run pins it)")
        })
    }
}

impl Drop for Sdk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Compares what the SDK saw with the fixture's expectation.
fn assert_seen(what: &str, seen: &Value, expect: &Value) {
    assert!(seen.get("exception").is_none(), "{what}: {seen}");
    assert_eq!(seen["status"], expect["status"], "{what}: {seen}");
    if expect["status"] != 200 {
        assert_eq!(seen["error_type"], expect["error_type"], "{what}: {seen}");
        return;
    }
    if let Some(text) = expect["content"].as_str() {
        assert_eq!(seen["content"], text, "{what}: {seen}");
    }
    assert_eq!(
        seen["finish_reason"], expect["finish_reason"],
        "{what}: {seen}"
    );
    if let Some(reasoning) = expect.get("reasoning") {
        assert_eq!(&seen["reasoning"], reasoning, "{what}: {seen}");
    }
    let calls = seen["tool_calls"].as_array().cloned().unwrap_or_default();
    let expected: Vec<Value> = match (expect.get("tool_calls"), expect.get("tool_call")) {
        (Some(list), _) => list.as_array().cloned().unwrap_or_default(),
        (None, Some(one)) => vec![one.clone()],
        (None, None) => Vec::new(),
    };
    let got: Vec<Value> = calls
        .iter()
        .map(|c| {
            let args: Value = serde_json::from_str(c["arguments"].as_str().unwrap_or("null"))
                .unwrap_or_else(|e| panic!("{what}: arguments are not JSON ({e}): {c}"));
            json!({"name": c["name"], "arguments": args})
        })
        .collect();
    assert_eq!(got, expected, "{what}: {seen}");
    let ids: std::collections::HashSet<&str> =
        calls.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(
        ids.len(),
        calls.len(),
        "{what}: every call has an id of its own: {seen}"
    );
    if expect["usage_only_final"] == true {
        assert_eq!(seen["usage_only_last"], true, "{what}: {seen}");
    }
}

#[actix_rt::test]
async fn the_official_sdk_reads_every_fixture() {
    let mock = Mock::start();
    let gw = every_platform_on(&mock);
    let mut sdk = Sdk::start();
    let base_url = gw.url("/v1");
    let mut checked = 0;
    for (platform, _) in PLATFORMS {
        for (case, fixture) in fixtures(platform) {
            let token = format!("{platform}-{case}-sdk");
            let id = add_keyed(&gw, platform, &token).await;
            let reply = upstream_reply(&fixture["upstream"]);
            if fixture["expect"]["status"] == 502 {
                mock.push(&token, reply.clone());
            }
            mock.push(&token, reply);
            let seen = sdk.run(&base_url, &fixture["request"]);
            assert_seen(&format!("{platform}/{case}"), &seen, &fixture["expect"]);
            let removed = admin(&gw, "DELETE", &format!("/api/keys/{id}"), None).await;
            assert_eq!(removed.status, 204);
            checked += 1;
        }
    }
    assert!(checked >= 14 * 7, "only {checked} fixtures ran");
}
