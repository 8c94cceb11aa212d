"""Drives the gateway's /v1/messages with the official anthropic Python SDK, one flow per input line.

Each line on stdin is {"flow", "base_url", "api_key"}; each line on stdout is what the SDK saw in that flow, or,
when the SDK raised its own error, {"raised": "<exception class>", "status", "error_type", "retry_after",
"text"}. The gateway's tests (tests/gateway/anthropic_sdk.rs) script the upstream before each flow and check it.
"""

import anthropic

from sdk_lines import serve

MODEL = "claude-sonnet-4-5-20250929"
HELLO = [{"role": "user", "content": "Hello"}]
WEATHER = [{
    "name": "get_weather",
    "description": "The weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]


def summary(message):
    """The parts of a message the tests compare."""
    blocks = []
    for block in message.content:
        if block.type == "text":
            blocks.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            blocks.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
        else:
            blocks.append({"type": block.type})
    return {"id": message.id, "type": message.type, "role": message.role, "model": message.model,
            "content": blocks, "stop_reason": message.stop_reason,
            "usage": [message.usage.input_tokens, message.usage.output_tokens]}


def plain(client):
    return summary(client.messages.create(model=MODEL, max_tokens=256, system="Be brief.", messages=HELLO))


def stream(client):
    with client.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as events:
        deltas = list(events.text_stream)
        final = events.get_final_message()
    return {"deltas": deltas, "final": summary(final)}


def tools(client):
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    with client.messages.stream(model=MODEL, max_tokens=256, tools=WEATHER, messages=ask) as events:
        first = events.get_final_message()
    call = next(block for block in first.content if block.type == "tool_use")
    result = [{"type": "tool_result", "tool_use_id": call.id, "content": "21 degrees, sunny"}]
    second = client.messages.create(
        model=MODEL, max_tokens=256, tools=WEATHER,
        messages=ask + [{"role": "assistant", "content": first.content}, {"role": "user", "content": result}])
    return {"first": summary(first), "second": summary(second)}


def count(client):
    return {"input_tokens": client.messages.count_tokens(model=MODEL, messages=HELLO).input_tokens}


def broken_stream(client):
    text = []
    try:
        with client.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as events:
            for piece in events.text_stream:
                text.append(piece)
    except anthropic.APIStatusError as e:
        return failure(e, "".join(text))
    return {"text": "".join(text)}


FLOWS = {"plain": plain, "stream": stream, "tools": tools, "count": count, "broken_stream": broken_stream,
         "error": plain}


def failure(e, text=None):
    body = e.body if isinstance(e.body, dict) else {}
    error = body.get("error") if isinstance(body, dict) else None
    return {"raised": type(e).__name__, "status": e.status_code,
            "error_type": error.get("type") if isinstance(error, dict) else None,
            "retry_after": e.response.headers.get("retry-after"), "text": text}


def run(case):
    client = anthropic.Anthropic(base_url=case["base_url"], api_key=case["api_key"], max_retries=0, timeout=30)
    try:
        return FLOWS[case["flow"]](client)
    except anthropic.APIStatusError as e:
        return failure(e)


if __name__ == "__main__":
    serve(run)
