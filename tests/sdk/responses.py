"""Drives the gateway's Responses API with the official openai Python SDK, one step per input line.

Every response and raw stream event is also validated strictly against the SDK's pydantic models (the client
itself builds them leniently), so a missing or mistyped field fails the test.

Each line on stdin is {"base_url", "api_key", "step", "args"}; each line on stdout is what the SDK saw:
{"response": {...}} for `create`, `retrieve`; {"events": [types], "sequence": [numbers], "response": {...}} for
`stream` (the SDK's stream helper and its final response) and `create_stream` (`create(stream=True)`'s raw
events, the response from the last one); {"deleted": true} for `delete`; {"status", "error_type",
"error_code"} for an API error. The gateway's tests script the upstream between steps and compare.
"""

import openai
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from sdk_lines import serve

EVENT = TypeAdapter(ResponseStreamEvent)


def summary(response):
    """What the SDK's typed `Response` holds, as plain JSON, once it validates strictly."""
    Response.model_validate(response.to_dict())
    return {
        "id": response.id,
        "object": response.object,
        "status": response.status,
        "model": response.model,
        "output_text": response.output_text,
        "previous_response_id": response.previous_response_id,
        "incomplete_details": response.incomplete_details.to_dict() if response.incomplete_details else None,
        "output": [item.to_dict() for item in response.output],
        "usage": response.usage.to_dict() if response.usage else None,
    }


def run(case):
    client = openai.OpenAI(base_url=case["base_url"], api_key=case["api_key"], max_retries=0, timeout=30)
    step, args = case["step"], case.get("args", {})
    try:
        if step == "create":
            return {"response": summary(client.responses.create(**args))}
        if step == "stream":
            with client.responses.stream(**args) as stream:
                events = list(stream)
                final = stream.get_final_response()
            return {"events": [e.type for e in events], "sequence": [e.sequence_number for e in events],
                    "response": summary(final)}
        if step == "create_stream":
            events = list(client.responses.create(stream=True, **args))
            for event in events:
                EVENT.validate_python(event.to_dict())
            return {"events": [e.type for e in events], "sequence": [e.sequence_number for e in events],
                    "response": summary(events[-1].response)}
        if step == "retrieve":
            return {"response": summary(client.responses.retrieve(args["id"]))}
        if step == "delete":
            client.responses.delete(args["id"])
            return {"deleted": True}
        return {"exception": f"unknown step {step}"}
    except openai.APIStatusError as e:
        return {"status": e.status_code, "error_type": e.type, "error_code": e.code}


if __name__ == "__main__":
    serve(run)
