"""The ``system2`` object of a request (``extra_body={"system2": {...}}`` with the OpenAI
client): per-request settings on top of the profile's.

* ``trace`` (bool): put the whole trace in the response's ``system2`` field;
* ``task``, ``choices``, ``entry_point``: how the answer is read (as in ``Query``);
* ``max_total_tokens``, ``deadline_s``: the query's budget (each replaces the profile's);
* any other key is a field of the strategy (``n``, ``temperature``, ``max_tokens``,
  ``kind``, ...). With the profile's ``kind`` (or none) the fields update the profile's
  strategy; another ``kind`` starts from that kind's defaults. The standard OpenAI fields
  ``temperature``, ``top_p``, ``max_tokens`` and ``seed`` set the same strategy fields,
  ``system2``'s winning.

Everything is validated by the same pydantic models the YAML is (plus the config's rules
across keys and the server's ``max_n``): a bad value is a 400 naming ``system2.FIELD`` (or
the top-level field it came from) and the value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from orchestrator.budget import QueryBudget
from orchestrator.strategies.config import StrategyConfig
from orchestrator.types import Query, TaskType
from system2.config import ServedProfile, System2Config
from system2.server.errors import APIError

__all__ = ["RequestOptions", "resolve_options"]

_STRATEGY = TypeAdapter[StrategyConfig](StrategyConfig)


class _QueryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    trace: bool = False
    task: TaskType | None = None
    choices: list[str] = Field(default_factory=list)
    entry_point: str | None = None
    max_total_tokens: int | None = Field(default=None, ge=1)
    deadline_s: float | None = Field(default=None, gt=0)


_QUERY_KEYS = frozenset(_QueryOptions.model_fields)


@dataclass(frozen=True)
class RequestOptions:
    """What a request runs: its query, the strategy (None: the profile's plan), the
    budget, and whether the response carries the whole trace."""

    query: Query
    strategy: StrategyConfig | None
    budget: QueryBudget
    trace: bool


def _bad(message: str, param: str, value: Any) -> APIError:
    return APIError(400, f"{param}: {message} (got {value!r})", param=param)


def _validation_error(exc: ValidationError, origin: Mapping[str, str], tag: str) -> APIError:
    error = exc.errors(include_url=False)[0]
    loc = [str(p) for p in error["loc"]]
    if loc and loc[0] == tag:  # the union member tag, e.g. 'self_consistency'
        loc = loc[1:]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = ["kind"]
    field = loc[0] if loc else ""
    param = ".".join([origin.get(field, f"system2.{field}"), *loc[1:]]) if field else "system2"
    if error["type"] == "extra_forbidden":
        return _bad(f"not a field of strategy {tag!r}", param, error.get("input"))
    value = tag if loc == ["kind"] else error.get("input")
    return _bad(error["msg"], param, value)


def _sample_counts(value: Any, path: str = "") -> list[tuple[str, int]]:
    """Every ``n`` in a strategy's settings (a cascade's stage has one too)."""
    if not isinstance(value, dict):
        return []
    found = [(f"{path}n", value["n"])] if isinstance(value.get("n"), int) else []
    for key, sub in value.items():
        found += _sample_counts(sub, f"{path}{key}.")
    return found


def _strategy(
    profile: ServedProfile, fields: dict[str, Any], origin: Mapping[str, str]
) -> StrategyConfig | None:
    if not fields:
        return None
    base = profile.planned_strategy
    kind = fields.get("kind", base.kind)
    data = base.model_dump(mode="json", exclude_unset=True) if kind == base.kind else {}
    data.update(fields, kind=kind)
    try:  # strict, as JSON: "n": "5" is not 5, but a list is a tuple
        return _STRATEGY.validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        raise _validation_error(exc, origin, str(kind)) from None


def resolve_options(
    config: System2Config,
    profile: ServedProfile,
    question: str,
    system2: Mapping[str, Any] | None,
    sampling: Mapping[str, Any],
) -> RequestOptions:
    """The query and settings a request asks for, or a 400 ``APIError`` saying which
    field is wrong and why. ``sampling``: the standard OpenAI fields that were given."""
    raw = dict(system2 or {})
    try:
        options = _QueryOptions.model_validate({k: v for k, v in raw.items() if k in _QUERY_KEYS})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        param = "system2." + ".".join(str(p) for p in error["loc"])
        raise _bad(error["msg"], param, error.get("input")) from None
    fields = {k: v for k, v in sampling.items()}
    origin = {k: k for k in fields}
    for key, value in raw.items():
        if key not in _QUERY_KEYS:
            fields[key] = value
            origin[key] = f"system2.{key}"
    strategy = _strategy(profile, fields, origin)
    effective = strategy or profile.planned_strategy
    for path, n in _sample_counts(effective.model_dump()):
        if n > config.server.max_n:
            param = f"system2.{path}"
            raise _bad(f"above this server's max_n {config.server.max_n}", param, n)
    if strategy is not None:
        problem = config.strategy_problem(profile, strategy)
        if problem is not None:
            raise _bad(problem, "system2.kind", strategy.kind)
    budget = profile.budget.model_copy(
        update={
            k: getattr(options, k)
            for k in ("max_total_tokens", "deadline_s")
            if getattr(options, k) is not None
        }
    )
    try:
        query = Query(
            text=question,
            task=options.task or profile.task,
            choices=tuple(options.choices),
            entry_point=options.entry_point,
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise _bad(error["msg"], "system2.choices", error.get("input")) from None
    return RequestOptions(query=query, strategy=strategy, budget=budget, trace=options.trace)
