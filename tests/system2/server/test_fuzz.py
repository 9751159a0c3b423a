"""At least 200 malformed or hostile requests: each gets a 4xx with OpenAI's error body,
and the server answers a good request afterwards as before."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from system2.server import ApiKeys, create_app
from system2.server.openai_requests import UNSUPPORTED_FIELDS
from tests.system2.server.conftest import assert_openai_error, chat, make_config

KEY = "fuzz-key"
LIMIT = 4096
PROFILES = {"math-sc5", "greedy", "both", "rounds"}
Case = tuple[dict[str, str], bytes]
"""Headers and body of one request."""

json_leaf = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
not_str = json_leaf.filter(lambda v: not isinstance(v, str)) | st.lists(json_leaf, max_size=2)
not_bool = json_value.filter(lambda v: not isinstance(v, bool))
not_int = st.text(max_size=4) | st.floats(allow_nan=False) | st.lists(json_leaf, max_size=2)
AUTH = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}


def _encoded(body: Any) -> Case:
    return AUTH, json.dumps(body).encode()


def _with(field: str, value: Any) -> Case:
    return _encoded({**chat("math-sc5"), field: value})


def _system2(**fields: Any) -> Case:
    return _encoded(chat("math-sc5", system2=fields))


bad_bytes = st.binary(max_size=64).filter(lambda b: not _is_object(b)).map(lambda b: (AUTH, b))
not_objects = json_value.filter(lambda v: not isinstance(v, dict)).map(_encoded)
random_objects = st.dictionaries(st.text(max_size=8), json_value, max_size=4).map(_encoded)
wrong_types = st.one_of(
    not_str.map(lambda v: _with("model", v)),
    json_value.filter(lambda v: not isinstance(v, list)).map(lambda v: _with("messages", v)),
    not_bool.map(lambda v: _with("stream", v)),
    not_int.map(lambda v: _with("n", v)),
    st.integers(min_value=2).map(lambda v: _with("n", v)),
    st.floats(max_value=0, allow_nan=False).map(lambda v: _with("temperature", v)),
    st.integers(max_value=0).map(lambda v: _with("max_tokens", v)),
    st.text(max_size=4).map(lambda v: _with("seed", v)),
)
hostile_system2 = st.one_of(
    st.integers(min_value=17).map(lambda n: _system2(n=n)),  # over max_n (16)
    st.integers(max_value=0).map(lambda n: _system2(n=n)),
    st.integers(max_value=0).map(lambda t: _system2(max_total_tokens=t)),
    st.floats(max_value=0, allow_nan=False).map(lambda d: _system2(deadline_s=d)),
    st.text(min_size=1, max_size=8).map(lambda k: _system2(**{f"zz_{k}": 1})),
    st.text(max_size=8)
    .filter(lambda k: k not in {"greedy", "sample"})
    .map(lambda k: _system2(kind=f"x{k}")),
    not_bool.map(lambda v: _system2(trace=v)),
    json_value.filter(lambda v: not isinstance(v, dict) and v is not None).map(
        lambda v: _encoded(chat("math-sc5", system2=v))
    ),
)
unknown_profile = (
    st.text(max_size=12).filter(lambda m: m not in PROFILES).map(lambda m: _encoded(chat(m)))
)
unsupported = st.tuples(
    st.sampled_from(UNSUPPORTED_FIELDS), json_leaf.filter(lambda v: v is not None)
)
bad_messages = st.one_of(
    st.sampled_from(["system", "assistant", "tool", "robot", ""]).map(
        lambda role: _encoded({"model": "greedy", "messages": [{"role": role, "content": "x"}]})
    ),
    st.text(max_size=3).map(
        lambda t: _encoded(
            {
                "model": "greedy",
                "messages": [{"role": "user", "content": [{"type": "image", "text": t}]}],
            }
        )
    ),
    st.just(_encoded({"model": "greedy", "messages": [{"role": "user", "content": " "}]})),
)
oversized = st.integers(min_value=LIMIT + 1, max_value=4 * LIMIT).map(
    lambda size: (AUTH, json.dumps(chat("greedy", question="x" * size)).encode())
)
missing_key = st.sampled_from(["", "Bearer nope", "Basic abc", f"Bearer {KEY}x"]).map(
    lambda header: (
        {"authorization": header} if header else {},
        json.dumps(chat("greedy")).encode(),
    )
)

hostile = st.one_of(
    bad_bytes,
    not_objects,
    random_objects,
    wrong_types,
    hostile_system2,
    unknown_profile,
    unsupported.map(lambda fv: _with(*fv)),
    bad_messages,
    oversized,
    missing_key,
)


def _is_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


def test_hostile_requests_get_4xx_and_the_server_keeps_serving() -> None:
    """250 generated bad requests across ten kinds: every answer is a 4xx with OpenAI's
    error body (and one by hand per status: 400, 401, 404, 413); afterwards /health and a
    good request work, and nothing is left running."""
    config = make_config(max_body_bytes=LIMIT)
    seen: list[int] = []
    with asyncio.Runner() as runner:
        app = create_app(config, api_keys=ApiKeys([KEY]))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

        @settings(
            max_examples=250,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=hostile, endpoint=st.sampled_from(["/v1/chat/completions", "/v1/completions"]))
        def check(case: Case, endpoint: str) -> None:
            headers, body = case
            response = runner.run(client.post(endpoint, content=body, headers=headers))
            assert 400 <= response.status_code < 500, (body[:200], response.text)
            assert_openai_error(response, response.status_code)
            seen.append(response.status_code)

        check()
        assert len(seen) >= 200, len(seen)
        # One of each kind by hand: which statuses the generated cases reach depends on the
        # hypothesis version.
        by_hand: list[tuple[Case, int]] = [
            (_encoded(chat("no-such-profile")), 404),
            (({"authorization": "Bearer nope"}, json.dumps(chat("greedy")).encode()), 401),
            ((AUTH, json.dumps(chat("greedy", question="x" * 2 * LIMIT)).encode()), 413),
            ((AUTH, b"{not json"), 400),
        ]
        for (headers, body), status in by_hand:
            response = runner.run(
                client.post("/v1/chat/completions", content=body, headers=headers)
            )
            assert response.status_code == status, (body[:80], response.text)
            assert_openai_error(response, status)
        assert runner.run(client.get("/health")).status_code == 200
        good = runner.run(client.post("/v1/chat/completions", json=chat("greedy"), headers=AUTH))
        assert good.status_code == 200
        assert good.json()["system2"]["answer"] == "4"
        assert app.state.system2.admission.idle
        runner.run(client.aclose())
