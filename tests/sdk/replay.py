"""Drives the gateway with the official openai Python SDK, one request per input line.

Each line on stdin is {"base_url", "api_key", "request"}; each line on stdout is what the SDK saw:
{"status", "content", "reasoning", "tool_calls": [{"id", "name", "arguments"}], "finish_reason",
"usage", "usage_only_last", "error_type"}. The gateway's tests compare it with the fixture's expectation.
"""

import json
import sys

import openai


def extra(obj, name):
    """A field the SDK's models do not declare (reasoning_content), as the SDK exposes it."""
    value = getattr(obj, name, None)
    if value is None and getattr(obj, "model_extra", None):
        value = obj.model_extra.get(name)
    return value


def run(case):
    client = openai.OpenAI(base_url=case["base_url"], api_key=case["api_key"], max_retries=0, timeout=30)
    request = dict(case["request"])
    out = {"status": 200, "content": None, "reasoning": None, "tool_calls": [], "finish_reason": None,
           "usage": None, "usage_only_last": False, "error_type": None}
    try:
        if request.get("stream"):
            calls = {}
            content, reasoning = [], []
            last_usage_only = False
            for chunk in client.chat.completions.create(**request):
                if chunk.usage is not None:
                    out["usage"] = chunk.usage.total_tokens
                last_usage_only = not chunk.choices and chunk.usage is not None
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        content.append(delta.content)
                    thought = extra(delta, "reasoning_content")
                    if thought:
                        reasoning.append(thought)
                    for call in delta.tool_calls or []:
                        entry = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                        if call.id:
                            entry["id"] = call.id
                        if call.function and call.function.name:
                            entry["name"] += call.function.name
                        if call.function and call.function.arguments:
                            entry["arguments"] += call.function.arguments
                    if choice.finish_reason:
                        out["finish_reason"] = choice.finish_reason
            out["content"] = "".join(content)
            out["reasoning"] = "".join(reasoning) or None
            out["tool_calls"] = [calls[i] for i in sorted(calls)]
            out["usage_only_last"] = last_usage_only
        else:
            answer = client.chat.completions.create(**request)
            message = answer.choices[0].message
            out["content"] = message.content
            out["reasoning"] = extra(message, "reasoning_content")
            out["tool_calls"] = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                                 for c in message.tool_calls or []]
            out["finish_reason"] = answer.choices[0].finish_reason
            out["usage"] = answer.usage.total_tokens if answer.usage else None
    except openai.APIStatusError as e:
        out["status"] = e.status_code
        body = e.body if isinstance(e.body, dict) else {}
        error = body.get("error", body) if isinstance(body, dict) else {}
        out["error_type"] = error.get("type") if isinstance(error, dict) else None
    return out


def serve(run_case):
    """Answers each case on stdin with what `run_case` saw, one JSON line each (the drivers' shared loop)."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result = run_case(json.loads(line))
        except Exception as e:  # noqa: BLE001 - reported to the test, which fails with it
            result = {"status": -1, "exception": f"{type(e).__name__}: {e}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    serve(run)
