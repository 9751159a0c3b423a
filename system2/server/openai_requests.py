"""The two OpenAI request bodies the server takes, parsed strictly.

Each field OpenAI defines but system2 cannot honour (``tools``, ``logprobs``, ``stop``,
penalties, ...) is refused by name with 400 rather than ignored; a field OpenAI does not
define is refused as OpenAI refuses it ("Unrecognized request argument"). Types are strict
(``"n": "2"`` is not 2). OpenAI's ``n`` must be 1: a request gets one answer, and the
samples behind it are set with ``system2.n``.

A chat request is one question: its last message is the user's, and earlier turns or
system messages are refused (the profile's prompt config supplies the system prompt).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from system2.server.errors import APIError

__all__ = [
    "UNSUPPORTED_FIELDS",
    "ChatCompletionRequest",
    "CompletionRequest",
    "OpenAIRequest",
    "parse_request",
]

UNSUPPORTED_FIELDS = (
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "parallel_tool_calls",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "response_format",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "best_of",
    "echo",
    "suffix",
    "audio",
    "modalities",
    "prediction",
    "reasoning_effort",
    "web_search_options",
)
"""OpenAI request fields system2 does not support (refused when given and not null)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class StreamOptions(_Strict):
    include_usage: bool = True


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class _Common(_Strict):
    """The fields both endpoints share. ``temperature``, ``top_p``, ``max_tokens`` and
    ``seed`` set the profile strategy's fields of those names (``system2`` wins)."""

    model: str = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    user: str | None = None
    system2: dict[str, Any] | None = None

    def sampling_overrides(self) -> dict[str, Any]:
        """The strategy fields the standard OpenAI fields set."""
        fields = {"temperature": self.temperature, "top_p": self.top_p, "seed": self.seed}
        fields["max_tokens"] = self.max_tokens
        return {k: v for k, v in fields.items() if v is not None}


class ChatCompletionRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = None

    def sampling_overrides(self) -> dict[str, Any]:
        fields = super().sampling_overrides()
        if self.max_completion_tokens is not None:
            fields["max_tokens"] = self.max_completion_tokens
        return fields

    def question(self) -> str:
        roles = [m.role for m in self.messages]
        if roles != ["user"]:
            raise APIError(
                400,
                "system2 answers one question per request: send a single user message (the "
                f"profile's prompt config sets the system prompt); got roles {roles}",
                param="messages",
                code="unsupported_messages",
            )
        return _non_empty(self.messages[0].text, "messages")


class CompletionRequest(_Common):
    prompt: str | list[str]

    def question(self) -> str:
        prompt = self.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise APIError(
                    400,
                    f"prompt: one prompt per request (got {len(prompt)})",
                    param="prompt",
                    code="unsupported_prompt",
                )
            prompt = prompt[0]
        return _non_empty(prompt, "prompt")


OpenAIRequest = ChatCompletionRequest | CompletionRequest


def _non_empty(text: str, param: str) -> str:
    if not text.strip():
        raise APIError(400, f"{param}: the question is empty", param=param)
    return text


def _describe(error: Any) -> tuple[str, str]:
    loc = [str(p) for p in error["loc"]]
    param = ".".join(loc) or "body"
    if error["type"] == "extra_forbidden":
        return f"Unrecognized request argument supplied: {param}", param
    if error["type"] == "missing":
        return f"{param}: field required", param
    return f"{param}: {error['msg']} (got {error.get('input')!r})", param


def parse_request(data: object, kind: type[OpenAIRequest]) -> OpenAIRequest:
    """Validate a decoded JSON body as ``kind``; every problem is a 400 naming the field."""
    if not isinstance(data, dict):
        raise APIError(400, f"the body must be a JSON object, got {type(data).__name__}")
    unsupported = [f for f in UNSUPPORTED_FIELDS if data.get(f) is not None]
    if unsupported:
        raise APIError(
            400,
            f"unsupported parameter(s): {', '.join(unsupported)} (system2 does not support "
            "them; remove them from the request)",
            param=unsupported[0],
            code="unsupported_parameter",
        )
    try:
        request = kind.model_validate(data)
    except ValidationError as exc:
        message, param = _describe(exc.errors(include_url=False)[0])
        raise APIError(400, message, param=param) from None
    if request.n not in (None, 1):
        raise APIError(
            400,
            f"n = {request.n}: system2 returns one answer per request; set how many samples "
            'stand behind it with "system2": {"n": ...}',
            param="n",
            code="unsupported_n",
        )
    return request
