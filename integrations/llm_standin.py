"""A local stand-in of an OpenAI-compatible chat-completions API, for tests and demos. It is not a model.

It implements `POST /chat/completions` as DeepSeek's API does (bearer key, `model`, `messages`; the answer in
`choices[0].message.content`) and answers by script, chosen by the model name:

| model | answer |
|---|---|
| `standin-echo` (or any other name) | the first sentence of the first passage in the prompt, cited as `[kb:<id>]` |
| `standin-slow` | the same, after `slow_seconds` |
| `standin-500` | HTTP 500 |
| `standin-bad-json` | HTTP 200 with a body that is not JSON |
| `standin-no-choices` | HTTP 200 with JSON that has no `choices` |
| `standin-figure` | an answer citing the passage but stating a fee the passages do not have |
| `standin-no-cite` | the echo answer without any citation |

A wrong or missing key gets HTTP 401 when the stand-in was given a key. Every request body received is kept in
`app[REQUESTS]`, for tests to look at. Run it by hand:

    .venv/bin/python -m integrations.llm_standin --port 8089 --api-key test-key
    CHAT_LLM_BASE_URL=http://127.0.0.1:8089 CHAT_LLM_API_KEY=test-key CHAT_LLM_MODEL=standin-echo make run
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from typing import Any

from aiohttp import web

REQUESTS = web.AppKey("requests", list[dict[str, Any]])
_PASSAGE = re.compile(r"\[kb:(?P<id>[a-z0-9][a-z0-9-]*)\][^\n]*\n(?P<text>.*?)(?=\n\s*\n\[kb:|\Z)", re.DOTALL)
_SENTENCE = re.compile(r"^(.+?(?:。|；|\.\s|\n|$))", re.DOTALL)


def create_standin_app(*, api_key: str | None = None, slow_seconds: float = 30.0) -> web.Application:
    app = web.Application()
    app[REQUESTS] = []

    async def chat_completions(request: web.Request) -> web.StreamResponse:
        if api_key is not None and request.headers.get("Authorization") != f"Bearer {api_key}":
            return _error(401, "Authentication Fails, Your api key is invalid", "authentication_error")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not JSON", "invalid_request_error")
        app[REQUESTS].append(body)
        model = str(body.get("model", ""))
        prompt = _last_user_content(body)
        if model == "standin-500":
            return _error(500, "internal error", "server_error")
        if model == "standin-bad-json":
            return web.Response(status=200, text="<html>gateway</html>", content_type="application/json")
        if model == "standin-no-choices":
            return web.json_response({"id": "x", "object": "chat.completion", "model": model})
        if model == "standin-slow":
            await asyncio.sleep(slow_seconds)
        passage_id, sentence = _first_passage(prompt)
        if passage_id is None:
            content = "无法回答。"
        elif model == "standin-figure":
            content = f"{sentence}每笔手续费 0.5 元，月费 300 元。[kb:{passage_id}]"
        elif model == "standin-no-cite":
            content = sentence
        else:
            content = f"{sentence} [kb:{passage_id}]"
        return web.json_response(_completion(model, content))

    app.router.add_post("/chat/completions", chat_completions)
    return app


def _last_user_content(body: Any) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def _first_passage(prompt: str) -> tuple[str | None, str]:
    match = _PASSAGE.search(prompt)
    if match is None:
        return None, ""
    text = match["text"].strip()
    sentence = _SENTENCE.match(text)
    return match["id"], (sentence[1] if sentence else text).strip()


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": f"standin-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": None}}, status=status)


def main() -> None:
    parser = argparse.ArgumentParser(description="A local stand-in of an OpenAI-compatible chat API (not a model).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--api-key", default=None, help="the bearer key to require (default: any)")
    parser.add_argument("--slow-seconds", type=float, default=30.0)
    args = parser.parse_args()
    web.run_app(
        create_standin_app(api_key=args.api_key, slow_seconds=args.slow_seconds), host=args.host, port=args.port
    )


if __name__ == "__main__":
    main()
