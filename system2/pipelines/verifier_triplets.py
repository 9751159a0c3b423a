"""Token quality exploration: the LLM2 verifier's training triplets, from real rollouts.

Per item, everything through the worker seam (``generate``, ``score``, ``decode_tokens``):

1. **References**: the generator's own solutions that ``score_item`` judges correct: one
   greedy, then ``reference_samples`` seeded samples; the first ``references`` distinct
   correct texts are kept (greedy first). With ``gold_rationale`` and no correct solution,
   the task's gold rationale (reasoning-gym's ``answer_cot``) is used if judged correct.
2. **Walk**: ``score(prompt, reference, top_logprobs=alternatives + 1)`` gives the
   reference's tokens x and the top tokens at each position. A position t is informative
   when p(x_t) < ``gold_prob_threshold`` and some alternative exists: a top token v != x_t
   with p(v) >= ``alpha`` * max p, the alpha-plausible rule decoding uses for V_t (ours: it
   keeps the negatives to tokens the verifier will actually be asked about), at most
   ``alternatives`` of them, most probable first. With ``plausible_gold`` (the default)
   x_t must be alpha-plausible too: guidance only ever chooses within V_t, and where x_t
   falls outside it (a gold rationale's wording, foreign to the generator, most often) a
   triplet teaches the verifier a choice decoding never offers. The ``positions`` least
   certain informative positions (lowest p(x_t), then earliest) are explored.
3. **Rollouts**: for x_t, then (unless x_t's accuracy is below ``margin``, where no
   alternative can be a negative: its accuracy is then recorded as null, a saving of most
   rollouts wherever the generator fails even from the gold prefix) for every alternative
   v, ``rollouts`` seeded samples continue the reply from the text of x_<t + v
   (``generate`` with ``assistant_prefix``, re-encoded by the worker); a rollout is right
   when ``score_item`` accepts the answer extracted from prefix + continuation, exactly as
   evaluation reads answers. An alternative that adds no text (a special token such as
   EOS) ends the reply there: the prefix is judged as is. One whose text equals x_t's
   (another tokenization) or holds a partial character (U+FFFD) is skipped, and so is a
   position whose gold prefix does.
4. **Label** (methods.md; the paper gives no numbers): v is a negative when
   accuracy(v) <= accuracy(x_t) - ``margin``.

Run file (``system2.evaluation.runfile``): a header with the settings, then one
``{"type": "item", ...}`` record per item: ``id``, ``status`` (``ok``, ``no_reference``,
``failed``), ``prompt`` (the chat messages), ``references`` (each: ``source``, ``text``,
``token_ids`` as scored, and the explored ``positions`` with every alternative's
accuracy), ``triplets`` (each: ``reference`` index, ``position`` within the reference's
tokens, ``gold_id``, ``negative_id``, both accuracies), ``rollouts``,
``completion_tokens`` and ``seconds``. A rerun skips recorded items (failed ones too,
unless ``retry_failed``) and refuses different settings.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console

from orchestrator.extraction import extract_answer
from orchestrator.prompts import PromptConfig, build_prompt
from orchestrator.types import TaskType
from system2.evaluation.datasets import EvalItem, score_item
from system2.evaluation.runfile import (
    RunFileWriter,
    bounded_map,
    is_settled,
    jsonable,
    prepare_run_file,
    read_run_file,
    run_progress,
)
from workers.base import (
    ChatMessage,
    ContinuationScore,
    GenerateRequest,
    Prompt,
    SamplingParams,
    ScoreRequest,
    Worker,
)

__all__ = [
    "ExplorationSettings",
    "SynthesisStats",
    "prompt_from_json",
    "read_triplets",
    "synthesize_triplets",
    "triplet_stats",
]

log = structlog.get_logger(__name__)
_EPS = 1e-9  # accuracies are multiples of 1 / rollouts; compare them with this slack

_REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class ExplorationSettings:
    """The knobs of token quality exploration (defaults and why in brackets).

    references: correct reference solutions kept per item [1: positions, not references,
        are where the data comes from].
    reference_samples: sampled tries after the greedy one [4].
    gold_rationale: fall back to the task's gold rationale [False: off-distribution text].
    alternatives: alternatives rolled out per position [3; with alpha 0.1 more are rare].
    positions: positions explored per reference [4: the CPU budget, 4 x 4 x 4 = 64
        rollouts per reference with the defaults].
    gold_prob_threshold: only positions with p(gold) below it [0.9, methods.md].
    alpha: an alternative needs p(v) >= alpha * max p [0.1, decoding's V_t rule].
    plausible_gold: the gold token needs it too [True: without it the least certain
        positions of a gold rationale are mostly wording the generator would never pick].
    rollouts: rollouts per token [4, methods.md].
    margin: negative when acc(v) <= acc(gold) - margin [0.5, methods.md].
    temperature, top_p: of reference samples and rollouts [0.7, 0.95, as self-consistency].
    max_tokens: per reference and per rollout [384, the default config's].
    seed: every sample's seed derives from it, the item and the position [0].
    """

    references: int = 1
    reference_samples: int = 4
    gold_rationale: bool = False
    alternatives: int = 3
    positions: int = 4
    gold_prob_threshold: float = 0.9
    alpha: float = 0.1
    plausible_gold: bool = True
    rollouts: int = 4
    margin: float = 0.5
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 384
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("references", "alternatives", "positions", "rollouts", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.reference_samples < 0:
            raise ValueError("reference_samples must be >= 0")
        if not 0.0 < self.gold_prob_threshold <= 1.0:
            raise ValueError("gold_prob_threshold must lie in (0, 1]")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError("alpha must lie in [0, 1]")
        if not 0.0 < self.margin <= 1.0:
            raise ValueError("margin must lie in (0, 1]")
        if self.temperature <= 0.0:
            raise ValueError("temperature must be > 0 (rollouts are sampled)")


@dataclass(frozen=True)
class SynthesisStats:
    """Totals over the recorded items of a run file."""

    items: int
    with_reference: int
    failed: int
    positions: int
    triplets: int
    rollouts: int
    completion_tokens: int
    seconds: float


def read_triplets(path: Path | str) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The header and the item records (last per id) of a triplets file."""
    return read_run_file(Path(path), record_type="item", key=lambda r: str(r["id"]))


def triplet_stats(records: Iterable[Mapping[str, Any]]) -> SynthesisStats:
    """Totals over item records (as ``synthesize_triplets`` writes them)."""
    rows = list(records)
    return SynthesisStats(
        items=len(rows),
        with_reference=sum(1 for r in rows if r["references"]),
        failed=sum(1 for r in rows if r["status"] == "failed"),
        positions=sum(len(ref["positions"]) for r in rows for ref in r["references"]),
        triplets=sum(len(r["triplets"]) for r in rows),
        rollouts=sum(int(r["rollouts"]) for r in rows),
        completion_tokens=sum(int(r["completion_tokens"]) for r in rows),
        seconds=sum(float(r["seconds"]) for r in rows),
    )


async def synthesize_triplets(
    items: Sequence[EvalItem],
    worker: Worker,
    out: Path | str,
    *,
    settings: ExplorationSettings = ExplorationSettings(),
    prompts: Mapping[TaskType, PromptConfig] | None = None,
    run_config: Mapping[str, Any] | None = None,
    retry_failed: bool = False,
    concurrency: int = 1,
    progress: bool = True,
    console: Console | None = None,
) -> SynthesisStats:
    """Explore every item not yet in ``out`` (resumable); returns totals over all items.

    The header holds the model name, the settings, the prompts and ``run_config`` (e.g.
    the data set, limit, seed and worker config). ``concurrency`` items run at once; one
    item's calls always run concurrently, so a batching worker decodes its rollouts together.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("item ids are not unique")
    clash = sorted({"type", "kind", "model", "settings", "prompts"} & set(run_config or {}))
    if clash:
        raise ValueError(f"run_config must not set {clash}: the synthesizer writes them")
    config = jsonable(
        {
            "kind": "verifier_triplets",
            "model": worker.model_name,
            "settings": asdict(settings),
            "prompts": {t: p.model_dump(mode="json") for t, p in (prompts or {}).items()},
            **(run_config or {}),
        }
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = prepare_run_file(out, config)
    _, records = read_triplets(out)

    def settled(item_id: str) -> bool:
        return is_settled(records.get(item_id), retry_failed=retry_failed)

    pending = [item for item in items if not settled(item.id)]
    done = {i: records[i] for i in ids if settled(i)}
    log.info("verifier.synthesis.start", out=str(out), total=len(items), todo=len(pending))

    async def explore(item: EvalItem) -> dict[str, Any]:
        prompt = build_prompt(item.query, (prompts or {}).get(item.query.task))
        return await _explore_item(item, prompt, worker, settings)

    bar = run_progress("triplets", console=console, enabled=progress)
    writer = RunFileWriter(out)
    try:
        if fresh:
            writer.write({"type": "header", **config})
        with bar:
            task = bar.add_task(_describe(done.values()), total=len(items), completed=len(done))
            async for item, record in bounded_map(pending, explore, concurrency):
                writer.write(record)
                done[item.id] = record
                bar.update(task, advance=1, description=_describe(done.values()))
    finally:
        writer.close()
    stats = triplet_stats(done[i] for i in ids)
    log.info("verifier.synthesis.done", out=str(out), triplets=stats.triplets)
    return stats


def _describe(records: Iterable[Mapping[str, Any]]) -> str:
    rows = list(records)
    found = sum(1 for r in rows if r["references"])
    triplets = sum(len(r["triplets"]) for r in rows)
    return f"{triplets} triplets, references for {found}/{len(rows)}"


# -- one item ---------------------------------------------------------------------------


class _Counter:
    """Rollouts and generated tokens of one item."""

    def __init__(self) -> None:
        self.rollouts = 0
        self.tokens = 0


async def _explore_item(
    item: EvalItem, prompt: Prompt, worker: Worker, settings: ExplorationSettings
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "item",
        "id": item.id,
        "status": "failed",
        "detail": "",
        "prompt": _jsonable_prompt(prompt),
        "references": [],
        "triplets": [],
        "rollouts": 0,
        "completion_tokens": 0,
        "seconds": 0.0,
    }
    started = time.perf_counter()
    counter = _Counter()
    try:
        references = await _references(item, prompt, worker, settings, counter)
        for index, (source, text) in enumerate(references):
            explored = await _explore_reference(item, prompt, worker, settings, text, counter)
            record["references"].append({"source": source, "text": text, **explored})
            record["triplets"] += [
                {"reference": index, **t} for t in _triplets(explored["positions"])
            ]
    except Exception as exc:
        record["detail"] = f"{type(exc).__name__}: {exc}"
        log.warning("verifier.synthesis.item_failed", id=item.id, error=record["detail"])
    else:
        record["status"] = "ok" if record["references"] else "no_reference"
    record.update(
        rollouts=counter.rollouts,
        completion_tokens=counter.tokens,
        seconds=time.perf_counter() - started,
    )
    return record


def _jsonable_prompt(prompt: Prompt) -> str | list[dict[str, str]]:
    return prompt if isinstance(prompt, str) else [m.model_dump() for m in prompt]


def prompt_from_json(data: Any) -> Prompt:
    """A record's ``prompt`` (text, or chat messages as dicts) back as a ``Prompt``."""
    if isinstance(data, str):
        return data
    return tuple(ChatMessage.model_validate(m) for m in data)


def _seed(settings: ExplorationSettings, *parts: object) -> int:
    """A stable 31-bit seed for one call, from the run's seed and where the call is."""
    digest = hashlib.sha256(repr((settings.seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def _judge(item: EvalItem, text: str) -> bool:
    """Whether the answer read from ``text`` (as evaluation reads it) is right."""
    q = item.query
    answer = extract_answer(text, q.task, choices=q.choices, entry_point=q.entry_point).answer
    return score_item(item, answer).correct


async def _references(
    item: EvalItem,
    prompt: Prompt,
    worker: Worker,
    settings: ExplorationSettings,
    counter: _Counter,
) -> list[tuple[str, str]]:
    """(source, text) of up to ``settings.references`` distinct correct solutions."""
    greedy = GenerateRequest(
        prompt=prompt, params=SamplingParams(max_tokens=settings.max_tokens), request_id=item.id
    )
    calls = [worker.generate(greedy)]
    if settings.reference_samples:
        sampled = SamplingParams(
            n=settings.reference_samples,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_tokens,
            seed=_seed(settings, item.id, "references"),
        )
        calls.append(worker.generate(GenerateRequest(prompt=prompt, params=sampled)))
    results = await asyncio.gather(*calls)
    found: list[tuple[str, str]] = []
    for source, result in zip(("greedy", "sample"), results, strict=False):
        for completion in result.completions:
            counter.tokens += len(completion.token_ids)
            text = completion.text
            if (
                len(found) < settings.references
                and text.strip()
                and all(text != t for _, t in found)
                and await asyncio.to_thread(_judge, item, text)
            ):
                found.append((source, text))
    if not found and settings.gold_rationale:
        gold = _gold_rationale(item)
        if gold is not None and await asyncio.to_thread(_judge, item, gold):
            found.append(("gold", gold))
    return found


def _gold_rationale(item: EvalItem) -> str | None:
    entry = item.metadata.get("rg_entry")
    meta = entry.get("metadata") if isinstance(entry, dict) else None
    text = meta.get("answer_cot") if isinstance(meta, dict) else None
    return text if isinstance(text, str) and text.strip() else None


@dataclass(frozen=True)
class _Position:
    index: int
    gold_id: int
    gold_prob: float
    alternatives: tuple[tuple[int, float], ...]  # (token id, probability)


def _informative_positions(
    scored: ContinuationScore, settings: ExplorationSettings
) -> list[_Position]:
    """The positions to explore, in position order (see the module doc, step 2)."""
    found = []
    for t, (gold, logprob) in enumerate(zip(scored.token_ids, scored.token_logprobs, strict=True)):
        gold_prob = math.exp(logprob)
        top = scored.top_alternatives[t] if t < len(scored.top_alternatives) else ()
        if gold_prob >= settings.gold_prob_threshold or not top:
            continue
        best = max(math.exp(a.logprob) for a in top)
        if settings.plausible_gold and gold_prob < settings.alpha * max(best, gold_prob):
            continue
        alternatives = tuple(
            (a.token_id, math.exp(a.logprob))
            for a in top
            if a.token_id != gold and math.exp(a.logprob) >= settings.alpha * best
        )[: settings.alternatives]
        if alternatives:
            found.append(_Position(t, gold, gold_prob, alternatives))
    chosen = sorted(found, key=lambda p: (p.gold_prob, p.index))[: settings.positions]
    return sorted(chosen, key=lambda p: p.index)


async def _explore_reference(
    item: EvalItem,
    prompt: Prompt,
    worker: Worker,
    settings: ExplorationSettings,
    text: str,
    counter: _Counter,
) -> dict[str, Any]:
    request = ScoreRequest(
        prompt=prompt, continuations=(text,), top_logprobs=settings.alternatives + 1
    )
    scored = (await worker.score(request)).scores[0]
    if len(scored.top_alternatives) != len(scored.token_ids) or not scored.token_ids:
        raise ValueError("the worker returned no top alternatives for the reference's tokens")
    ids = list(scored.token_ids)
    chosen = _informative_positions(scored, settings)
    explored = await asyncio.gather(
        *(_explore_position(item, prompt, worker, settings, text, ids, p, counter) for p in chosen)
    )
    return {"token_ids": ids, "positions": [e for e in explored if e is not None]}


async def _explore_position(
    item: EvalItem,
    prompt: Prompt,
    worker: Worker,
    settings: ExplorationSettings,
    text: str,
    ids: list[int],
    position: _Position,
    counter: _Counter,
) -> dict[str, Any] | None:
    t = position.index
    before = await worker.decode_tokens(ids[:t])
    gold_text = await worker.decode_tokens([*ids[:t], position.gold_id])
    if _broken(gold_text, text):
        return None  # the gold token ends inside a character: no text prefix to roll out
    alternatives = []
    for token, prob in position.alternatives:
        prefix = await worker.decode_tokens([*ids[:t], token])
        if prefix != gold_text and not _broken(prefix, text):
            alternatives.append((token, prob, prefix))
    if not alternatives:
        return None
    gold_accuracy = await _rollout_accuracy(
        item, prompt, worker, settings, gold_text, before, counter
    )
    accuracies: list[float | None] = [None] * len(alternatives)
    if gold_accuracy - settings.margin >= -_EPS:  # else no alternative can be a negative
        accuracies = list(
            await asyncio.gather(
                *(
                    _rollout_accuracy(item, prompt, worker, settings, prefix, before, counter)
                    for _, _, prefix in alternatives
                )
            )
        )
    return {
        "position": t,
        "gold_id": position.gold_id,
        "gold_prob": position.gold_prob,
        "gold_accuracy": gold_accuracy,
        "alternatives": [
            {
                "token_id": token,
                "prob": prob,
                "accuracy": accuracy,
                "negative": accuracy is not None
                and accuracy <= gold_accuracy - settings.margin + _EPS,
            }
            for (token, prob, _), accuracy in zip(alternatives, accuracies, strict=True)
        ],
    }


def _broken(prefix: str, reference: str) -> bool:
    """Whether decoding ``prefix`` produced a partial character (more U+FFFD than the
    reference text holds), so it cannot be passed on as text."""
    return prefix.count(_REPLACEMENT) > reference.count(_REPLACEMENT)


async def _rollout_accuracy(
    item: EvalItem,
    prompt: Prompt,
    worker: Worker,
    settings: ExplorationSettings,
    prefix: str,
    before: str,
    counter: _Counter,
) -> float:
    """The share of rollouts from ``prefix`` that reach a right answer; the seed depends on
    the item and the prefix only, so a rerun draws the same rollouts."""
    if prefix == before:  # the token adds no text (EOS or another special token): stop here
        return 1.0 if await asyncio.to_thread(_judge, item, prefix) else 0.0
    params = SamplingParams(
        n=settings.rollouts,
        temperature=settings.temperature,
        top_p=settings.top_p,
        max_tokens=settings.max_tokens,
        seed=_seed(settings, item.id, prefix),
    )
    result = await worker.generate(
        GenerateRequest(prompt=prompt, params=params, assistant_prefix=prefix)
    )
    counter.rollouts += len(result.completions)
    counter.tokens += sum(len(c.token_ids) for c in result.completions)
    right = 0
    for completion in result.completions:
        right += await asyncio.to_thread(_judge, item, prefix + completion.text)
    return right / len(result.completions)


def _triplets(positions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "position": p["position"],
            "gold_id": p["gold_id"],
            "negative_id": a["token_id"],
            "gold_accuracy": p["gold_accuracy"],
            "negative_accuracy": a["accuracy"],
        }
        for p in positions
        for a in p["alternatives"]
        if a["negative"]
    ]
