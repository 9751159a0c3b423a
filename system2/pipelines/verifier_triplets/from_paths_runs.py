"""Path triplets from evaluation run files: every question's recorded candidates, judged and
tokenized, parted into triplets (``from_paths``) and written as a triplets file.

Input: run files of ``system2 eval`` (or ``verifier eval``, or a search benchmark): a
header with ``dataset``, ``limit`` and ``seed`` (the items are loaded again from them) and
item records whose ``trace.candidates`` hold every sampled completion's ``text`` and
``answer`` (self-consistency samples, a search's finished paths). Run files keep texts, not
token ids, so each text is encoded alone with the generator's tokenizer
(``add_special_tokens=False``), exactly as ``score`` encodes a continuation and so as the
rollout references were: the trainer reads prompt ids + these ids, as for those. A text
can encode to other ids than were sampled (a non-canonical tokenization): the divergence
is then found on the canonical ids, the ones the trainer and guidance read.

A candidate is right when its answer scores right (``candidates_correct`` where the record
has it, else ``score_item``); one cut off by the token limit without an answer says
nothing about right or wrong and is left out, while a finished one without an answer is
wrong (as rollouts judge it). The same question in several run files pools its paths
(they must have been posed with the same prompt).

Output: a triplets file that ``read_triplets`` and ``system2 verifier train`` read
unchanged: the header has ``source: "paths"`` and the input runs; one item record per
question in the rollout format (``prompt``, ``references`` with ``token_ids``,
``triplets`` with ``reference``, ``position``, ``gold_id``, ``negative_id`` and both
accuracies) plus ``source: "paths"`` on the record and on each triplet, the branches'
path counts, the question's ``paths`` / ``right`` counts and, as the cost it reuses,
``source_completion_tokens`` and ``source_seconds`` (its records' generation); its own
``rollouts`` and ``completion_tokens`` are 0. ``status`` is ``ok`` when the question has a
right and a wrong path, else ``no_pair``. Rerunning with the same file skips recorded
questions (cheap either way).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog
from rich.console import Console

from orchestrator.prompts import PromptConfig, build_prompt
from system2.evaluation.datasets import EvalItem, load_dataset, score_item
from system2.evaluation.runner import read_records
from system2.resumable_run import ResumableRun
from workers.catalog import resolve
from workers.errors import CatalogError

from .from_paths import PathSettings, SampledPath, divergence_triplets
from .pipeline import SynthesisStats, triplet_stats

__all__ = [
    "QuestionPaths",
    "RunFile",
    "Tokenizer",
    "gather_paths",
    "path_record",
    "read_runs",
    "triplets_from_paths",
    "triplets_from_runs",
]

log = structlog.get_logger(__name__)

SOURCE = "paths"


def _describe(records: Collection[Mapping[str, Any]]) -> str:
    parted = sum(1 for r in records if r["status"] == "ok")
    count = sum(len(r["triplets"]) for r in records)
    return f"{count} triplets, right and wrong paths for {parted}/{len(records)}"


_PATHS_RUN: ResumableRun[EvalItem, str] = ResumableRun(
    record_type="item",  # as the rollout pipeline's, so read_triplets reads both
    key=lambda item: item.id,
    record_key=lambda r: str(r["id"]),
    label="path triplets",
    describe=_describe,
    log_event="verifier.path_triplets",
)


class Tokenizer(Protocol):
    """What is needed of the generator's tokenizer (a Hugging Face tokenizer has it)."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...


@dataclass(frozen=True)
class RunFile:
    """A run file as read: its path, header and item records (``read_records``)."""

    path: Path
    header: Mapping[str, Any]
    records: Mapping[str, Mapping[str, Any]]


@dataclass
class QuestionPaths:
    """One question's candidates pooled over the run files, in the order read."""

    item: EvalItem
    prompt: list[dict[str, str]]
    texts: list[str] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    source_completion_tokens: int = 0
    source_seconds: float = 0.0


def gather_paths(
    runs: Sequence[RunFile],
    items: Mapping[str, EvalItem],
    prompts: Mapping[str, Mapping[str, PromptConfig]] | None = None,
) -> list[QuestionPaths]:
    """Every question's judged candidates from ``runs``; ``items`` by id (each run's items,
    loaded again), ``prompts`` by run path (the run's prompt configs by task; the task's
    default where missing). ValueError names a record that cannot be read or a question
    posed with two prompts."""
    found: dict[str, QuestionPaths] = {}
    for run in runs:
        configs = (prompts or {}).get(str(run.path), {})
        for key, record in run.records.items():
            trace = record.get("trace")
            if record.get("status") == "failed" or not trace:
                continue
            item = items.get(key)
            if item is None:
                raise ValueError(f"{run.path}: item {key!r} is not among the items loaded again")
            if record.get("question") not in (None, item.query.text):
                raise ValueError(
                    f"{run.path}: item {key!r}'s question differs from the data set's "
                    "(another data set version or seed?)"
                )
            messages = build_prompt(item.query, configs.get(item.query.task))
            prompt = [m.model_dump() for m in messages]
            question = found.setdefault(key, QuestionPaths(item, prompt))
            if question.prompt != prompt:
                raise ValueError(f"{run.path}: item {key!r} was posed with another prompt")
            _add_candidates(question, record, run.path)
    return list(found.values())


def _add_candidates(question: QuestionPaths, record: Mapping[str, Any], path: Path) -> None:
    candidates = record["trace"].get("candidates") or []
    verdicts = record.get("candidates_correct")
    if verdicts is not None and len(verdicts) != len(candidates):
        raise ValueError(
            f"{path}: item {question.item.id!r} has candidates_correct of another length"
        )
    for i, candidate in enumerate(candidates):
        answer = candidate.get("answer")
        if answer is None and candidate.get("finish_reason") == "length":
            continue  # cut off: neither right nor wrong
        right = verdicts[i] if verdicts is not None else score_item(question.item, answer).correct
        question.texts.append(str(candidate["text"]))
        question.correct.append(bool(right))
    question.runs.append(path.name)
    question.source_completion_tokens += int(record.get("completion_tokens") or 0)
    question.source_seconds += float(record.get("seconds") or 0.0)


def path_record(
    question: QuestionPaths, tokenizer: Tokenizer, settings: PathSettings
) -> dict[str, Any]:
    """The triplets-file item record of one question (see the module doc)."""
    started = time.perf_counter()
    ids = [tuple(tokenizer.encode(t, add_special_tokens=False)) for t in question.texts]
    paths = [SampledPath(i, c) for i, c in zip(ids, question.correct, strict=True)]
    found = divergence_triplets(paths, settings)
    references: list[dict[str, Any]] = []
    index: dict[int, int] = {}
    triplets = []
    for t in found:
        if t.reference not in index:
            index[t.reference] = len(references)
            references.append(
                {
                    "source": SOURCE,
                    "text": question.texts[t.reference],
                    "token_ids": list(ids[t.reference]),
                    "positions": [],
                }
            )
        references[index[t.reference]]["positions"].append(
            {"position": t.position, "gold_id": t.gold_id, "negative_id": t.negative_id}
        )
        triplets.append(
            {
                "reference": index[t.reference],
                "position": t.position,
                "gold_id": t.gold_id,
                "negative_id": t.negative_id,
                "gold_accuracy": t.gold_accuracy,
                "negative_accuracy": t.negative_accuracy,
                "gold_paths": t.gold_paths,
                "negative_paths": t.negative_paths,
                "source": SOURCE,
            }
        )
    both = any(question.correct) and not all(question.correct)
    return {
        "type": "item",
        "id": question.item.id,
        "source": SOURCE,
        "status": "ok" if both else "no_pair",
        "detail": "",
        "prompt": question.prompt,
        "references": references,
        "triplets": triplets,
        "paths": len(set(ids)),
        "right": len({i for i, c in zip(ids, question.correct, strict=True) if c}),
        "runs": question.runs,
        "rollouts": 0,
        "completion_tokens": 0,
        "seconds": time.perf_counter() - started,
        "source_completion_tokens": question.source_completion_tokens,
        "source_seconds": question.source_seconds,
    }


async def triplets_from_paths(
    questions: Sequence[QuestionPaths],
    tokenizer: Tokenizer,
    out: Path | str,
    *,
    generator: str,
    settings: PathSettings | None = None,
    run_config: Mapping[str, Any] | None = None,
    allow_mixed: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> SynthesisStats:
    """Write every question not yet in ``out`` (resumable) as a path-triplets record;
    returns totals over all questions. The header records ``generator`` (what ``train``
    loads), the settings and ``run_config`` (e.g. the input runs)."""
    settings = settings or PathSettings()
    clash = sorted({"kind", "source", "model", "generator", "settings"} & set(run_config or {}))
    if clash:
        raise ValueError(f"run_config must not set {clash}: the path triplets writer does")
    config = {
        "kind": "verifier_triplets",
        "source": SOURCE,
        "model": generator,
        "generator": generator,
        "settings": asdict(settings),
        **(run_config or {}),
    }
    by_id = {q.item.id: q for q in questions}

    async def record(item: EvalItem) -> dict[str, Any]:
        return path_record(by_id[item.id], tokenizer, settings)

    records = await _PATHS_RUN.run(
        [q.item for q in questions],
        record,
        out,
        config=config,
        allow_mixed=allow_mixed,
        progress=progress,
        console=console,
    )
    stats = triplet_stats(records)
    log.info("verifier.path_triplets.done", out=str(out), triplets=stats.triplets)
    return stats


def read_runs(
    paths: Sequence[Path | str],
) -> tuple[list[RunFile], dict[str, EvalItem], dict[str, dict[str, PromptConfig]], str | None]:
    """The run files at ``paths``, their items loaded again (by id), their prompt configs
    (by run path) and the generator they agree on (None if none records one).
    ValueError says which file is not a usable run file or which two disagree."""
    runs: list[RunFile] = []
    items: dict[str, EvalItem] = {}
    prompts: dict[str, dict[str, PromptConfig]] = {}
    generators: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw)
        header, records = read_records(path)
        if header is None or any(k not in header for k in ("dataset", "limit", "seed")):
            raise ValueError(
                f"{path}: not an evaluation run file (its header needs dataset, limit and seed)"
            )
        runs.append(RunFile(path, header, records))
        for item in load_dataset(header["dataset"], limit=header["limit"], seed=header["seed"]):
            items.setdefault(item.id, item)
        prompts[str(path)] = {
            task: PromptConfig.model_validate(config)
            for task, config in (header.get("prompts") or {}).items()
        }
        generator = header.get("generator") or header.get("model")
        if generator:
            generators.setdefault(str(generator), path)
    if len(generators) > 1:
        named = ", ".join(f"{g} ({p})" for g, p in generators.items())
        raise ValueError(f"the run files were generated by different models: {named}")
    return runs, items, prompts, next(iter(generators), None)


async def triplets_from_runs(
    paths: Sequence[Path | str],
    out: Path | str,
    *,
    model: str | None = None,
    settings: PathSettings | None = None,
    allow_mixed: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> SynthesisStats:
    """``read_runs``, ``gather_paths`` and ``triplets_from_paths`` with the tokenizer of
    ``model`` (a catalog name or local directory; default: the generator the runs record).
    ValueError says what is wrong with the runs, the model or an existing ``out``."""
    from transformers import AutoTokenizer

    runs, items, prompts, recorded = read_runs(paths)
    questions = gather_paths(runs, items, prompts)
    generator = model or recorded
    if not generator:
        raise ValueError("the run files record no generator; pass the model")
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve(generator))
    except (CatalogError, OSError) as exc:
        raise ValueError(f"cannot load the tokenizer of {generator!r}: {exc}") from exc
    return await triplets_from_paths(
        questions,
        tokenizer,
        out,
        generator=generator,
        settings=settings,
        run_config={"runs": [str(p) for p in paths]},
        allow_mixed=allow_mixed,
        progress=progress,
        console=console,
    )
