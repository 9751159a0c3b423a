"""The latent-reasoning benchmark's logic: which arms the pipeline's step markers give,
held-out items, rows and paired comparisons from run files, the goal's verdict, wall time
across resumed runs, and a whole run (on a scripted stand-in for the transformers worker)
that resumes and rebuilds its table from the stored runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from benchmarks import latent
from benchmarks.common import Comparison
from orchestrator.types import Query
from system2.evaluation import EvalItem, read_records, run_eval
from system2.evaluation.runner import failed_record
from system2.pipelines.latent import EVAL_SEEDS_FROM, PipelineLayout, collect_chains, write_step
from workers.base import GenerateRequest, GenerateResult
from workers.scripted import ScriptedWorker

BASE_MODEL = "smollm2-135m-instruct"


def items(n: int) -> list[EvalItem]:
    return [
        EvalItem(id=f"i{k:02d}", query=Query(id=f"i{k:02d}", text=f"What is {k} + 1?"),
                 gold=str(k + 1))
        for k in range(n)
    ]  # fmt: skip


def write_run(
    results: Path,
    arm: str,
    outcomes: Mapping[str, tuple[bool, int, int]],
    *,
    header: Mapping[str, Any] | None = None,
) -> Path:
    """A run file for ``arm`` as ``run_eval`` writes it: per item id (correct, trace
    tokens, latent tokens), one second each."""
    out = latent.run_file(arm, results)
    out.parent.mkdir(parents=True, exist_ok=True)
    chosen = [i for i in items(100) if i.id in outcomes]

    async def record(item: EvalItem) -> dict[str, Any]:
        correct, tokens, latent_tokens = outcomes[item.id]
        done = failed_record(item)
        done.update(status="ok", correct=correct, completion_tokens=tokens, seconds=1.0,
                    latent_tokens=latent_tokens)  # fmt: skip
        return done

    config = {"arm": arm, **(header or {})}
    asyncio.run(run_eval(chosen, None, out, run_config=config, record_fn=record, progress=False))
    return out


def outcomes(right: int, n: int, tokens: int, latent_tokens: int = 0) -> dict[str, Any]:
    """The first ``right`` of ``n`` items right, each with ``tokens`` (``latent_tokens`` of
    them latent)."""
    return {f"i{k:02d}": (k < right, tokens, latent_tokens) for k in range(n)}


# --- locations and the pipeline's arms ------------------------------------------------


def test_run_files_live_under_results_runs(tmp_path: Path) -> None:
    """Each arm's run file is ``<results>/runs/latent_<arm>.jsonl``."""
    assert latent.run_file("text_cot", tmp_path) == tmp_path / "runs" / "latent_text_cot.jsonl"


def test_arm_models_need_the_text_cot_fine_tune(tmp_path: Path) -> None:
    """Without a finished text-CoT fine-tune there is nothing to compare: exit, naming it."""
    with pytest.raises(SystemExit, match="no finished text-CoT fine-tune"):
        latent.arm_models(tmp_path)


def test_arm_models_follow_the_finished_steps(tmp_path: Path) -> None:
    """The base model comes from the text fine-tune's config; Token Assorted and continuous
    thoughts appear once their steps finished, the latter with the CODI step's k."""
    layout = PipelineLayout(tmp_path)
    write_step(layout.finetune("text"), "finetune", {"base_model": BASE_MODEL}, {},
               seconds=1.0, threads=2)  # fmt: skip
    assert latent.arm_models(tmp_path) == {
        "base": (BASE_MODEL, 0),
        "text_cot": (str(layout.finetune("text")), 0),
    }
    write_step(layout.finetune("latent"), "finetune", {}, {}, seconds=1.0, threads=2)
    write_step(layout.codi, "codi", {"thoughts": 4}, {}, seconds=1.0, threads=2)
    models = latent.arm_models(tmp_path)
    assert list(models) == list(latent.ARMS)
    assert models["token_assorted"] == (str(layout.finetune("latent")), 0)
    assert models["continuous"] == (str(layout.codi), 4)


def test_held_out_items_refuse_training_seeds(tmp_path: Path) -> None:
    """A seed below the evaluation range is refused before any item is loaded."""
    args = argparse.Namespace(seed=EVAL_SEEDS_FROM - 1, limit=3, pipeline=tmp_path)
    with pytest.raises(SystemExit, match=f"--seed must be >= {EVAL_SEEDS_FROM}"):
        latent.held_out_items(args)


def test_held_out_items_drop_questions_trained_on(tmp_path: Path) -> None:
    """An evaluation item whose question is also a training chain's is dropped and
    counted; without a chains file nothing is dropped."""
    args = argparse.Namespace(seed=EVAL_SEEDS_FROM, limit=3, pipeline=tmp_path)
    kept, dropped = latent.held_out_items(args)
    assert (len(kept), dropped) == (3, 0)
    asyncio.run(collect_chains(kept[1:2], PipelineLayout(tmp_path).chains, source="gold",
                               progress=False))  # fmt: skip
    again, dropped = latent.held_out_items(args)
    assert dropped == 1
    assert [i.id for i in again] == [kept[0].id, kept[2].id]


# --- wall time, rows, comparisons and the goal -----------------------------------------


def test_wall_time_accumulates_across_resumed_runs(tmp_path: Path) -> None:
    """Seconds add up in a sidecar beside the run file; zero reads without writing."""
    run = tmp_path / "latent_base.jsonl"
    assert latent.add_wall_time(run, 0.0) == 0.0
    assert not run.with_suffix(".wall.json").exists()
    assert latent.add_wall_time(run, 1.5) == 1.5
    assert latent.add_wall_time(run, 2.0) == 3.5
    assert latent.add_wall_time(run, 0.0) == 3.5
    assert json.loads(run.with_suffix(".wall.json").read_text()) == {"wall_s": 3.5}


def test_arm_row_reads_means_and_the_interval_from_the_run_file(tmp_path: Path) -> None:
    """Accuracy with its Wilson interval; trace, text and latent token means; the share
    shorter than text-CoT; thoughts and model from the header; wall time from the sidecar."""
    path = write_run(tmp_path, "continuous", outcomes(3, 4, tokens=60, latent_tokens=20),
                     header={"thoughts": 4, "model": "runs/latent/codi"})  # fmt: skip
    latent.add_wall_time(path, 12.0)
    row = latent.arm_row("continuous", path, text_trace=80.0)
    assert row["items"] == 4
    assert row["accuracy"] == 0.75
    assert row["accuracy_ci"] == pytest.approx([0.3006, 0.9544], abs=1e-4)
    assert (row["trace_tokens_mean"], row["text_tokens_mean"], row["latent_tokens_mean"]) == (
        60.0, 40.0, 20.0)  # fmt: skip
    assert row["shorter_than_text_cot"] == pytest.approx(0.25)
    assert (row["query_s_mean"], row["run_wall_s"], row["failures"]) == (1.0, 12.0, 0)
    assert (row["thoughts"], row["model"]) == (4, "runs/latent/codi")
    assert latent.arm_row("continuous", path, text_trace=None)["shorter_than_text_cot"] is None


def test_build_rows_compares_every_arm_with_text_cot(tmp_path: Path) -> None:
    """Only arms with run files get rows; each other arm is paired with text-CoT on the
    same items (fixed, broken, exact McNemar p)."""
    write_run(tmp_path, "text_cot", outcomes(6, 10, tokens=100))
    write_run(tmp_path, "base", outcomes(2, 10, tokens=150))
    write_run(tmp_path, "token_assorted", outcomes(7, 10, tokens=80, latent_tokens=30))
    rows, comparisons = latent.build_rows(list(latent.ARMS), tmp_path)
    assert [r["arm"] for r in rows] == ["base", "text_cot", "token_assorted"]
    shorter = {r["arm"]: r["shorter_than_text_cot"] for r in rows}
    assert shorter == pytest.approx({"base": -0.5, "text_cot": 0.0, "token_assorted": 0.2})
    assert [(c.baseline, c.method) for c in comparisons] == [
        ("text_cot", "base"), ("text_cot", "token_assorted")]  # fmt: skip
    base, assorted = (c.result for c in comparisons)
    assert (base.fixed, base.broken) == (0, 4)
    assert base.p_value == pytest.approx(0.125)  # both tails of 4 coin flips all one way
    assert (assorted.fixed, assorted.broken) == (1, 0)
    assert assorted.fixed_ids == ("i06",)


def test_build_rows_without_text_cot_has_no_comparisons(tmp_path: Path) -> None:
    """Without the baseline's run file no arm has a share shorter and nothing is paired."""
    write_run(tmp_path, "base", outcomes(2, 4, tokens=150))
    rows, comparisons = latent.build_rows(["base", "text_cot"], tmp_path)
    assert [r["arm"] for r in rows] == ["base"]
    assert rows[0]["shorter_than_text_cot"] is None
    assert comparisons == []


def _row(arm: str, shorter: float | None, latent: float = 8.0) -> dict[str, Any]:
    return {"arm": arm, "shorter_than_text_cot": shorter, "latent_tokens_mean": latent}


def _pair(method: str, baseline: Sequence[bool], other: Sequence[bool]) -> Comparison:
    ids = [f"i{k}" for k in range(len(baseline))]
    return Comparison.of(
        "gsm_symbolic",
        ("text_cot", dict(zip(ids, baseline, strict=True))),
        (method, dict(zip(ids, other, strict=True))),
    )


def test_goal_needs_shorter_traces_at_an_accuracy_not_significantly_below() -> None:
    """Met: >= 15% shorter and not significantly less accurate (a small drop is allowed);
    not met: too little shorter, or significantly worse; base and arms without a
    comparison get no verdict."""
    right = [True] * 10 + [False] * 10
    verdicts = latent.goal(
        [_row("base", 0.0), _row("text_cot", 0.0), _row("token_assorted", 0.2),
         _row("continuous", 0.5)],
        [_pair("base", right, [False] * 20),
         _pair("token_assorted", right, [True] * 9 + [False] * 11),
         _pair("continuous", right, [False] * 20)],
    )  # fmt: skip
    assert verdicts == {
        "token_assorted": "met: 20.0% shorter, accuracy -5.0% (p=1)",
        "continuous": "not met: 50.0% shorter, accuracy -50.0% (p=0.00195)",
    }
    barely = latent.goal([_row("token_assorted", 0.14)], [_pair("token_assorted", right, right)])
    assert barely["token_assorted"].startswith("not met: 14.0% shorter")
    assert latent.goal([_row("continuous", None)], []) == {}
    assert latent.goal([_row("continuous", None)], [_pair("continuous", right, right)]) == {
        "continuous": "not met: 0.0% shorter, accuracy +0.0% (p=1)"
    }


def test_goal_is_not_met_without_latent_ids_and_cannot_tell_at_the_floor() -> None:
    """A Token Assorted arm that generated no latent id does not meet the goal however short
    its traces; where text-CoT is right on so few items that an arm wrong on all of them
    would not be significantly below it (5 of 200: p = 0.0625), the verdict is "cannot
    tell"; one more right item (6: p = 0.031) makes the test able to tell again."""
    right = [True] * 10 + [False] * 10
    skipped = latent.goal([_row("token_assorted", 0.6, latent=0.0)],
                          [_pair("token_assorted", right, right)])  # fmt: skip
    assert skipped["token_assorted"].startswith("not met: no latent id generated; 60.0%")
    floor = [True] * 5 + [False] * 195
    verdicts = latent.goal(
        [_row("token_assorted", 0.6), _row("continuous", 0.9)],
        [_pair("token_assorted", floor, floor), _pair("continuous", floor, [False] * 200)],
    )
    assert all(v.startswith("cannot tell: text-CoT answers 5 of 200") for v in verdicts.values())
    longer = latent.goal([_row("token_assorted", -0.1)], [_pair("token_assorted", floor, floor)])
    assert longer["token_assorted"].startswith("not met: -10.0% shorter")
    above = [True] * 6 + [False] * 194
    verdicts = latent.goal([_row("continuous", 0.9)], [_pair("continuous", above, above)])
    assert verdicts["continuous"].startswith("met: 90.0% shorter")


# --- a whole run on a scripted stand-in ------------------------------------------------


class ThinkingScriptedWorker(ScriptedWorker):
    """A scripted stand-in for a latent model: each sample's continuous thoughts count as
    latent tokens (and as generated positions), as the transformers worker counts them."""

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        result = await super().generate(request)
        thoughts = request.params.continuous_thoughts * request.params.n
        usage = result.usage.model_copy(update={
            "completion_tokens": result.usage.completion_tokens + thoughts,
            "latent_tokens": thoughts,
        })  # fmt: skip
        return result.model_copy(update={"usage": usage})


class ScriptedLoader:
    """Stands in for ``TransformersWorker`` in ``benchmarks.latent``: ``load`` gives a
    scripted worker that answers right unless the checkpoint is the base model."""

    gold: ClassVar[dict[str, str]] = {}  # question -> gold answer of the evaluation items
    loads: ClassVar[list[tuple[str, str]]] = []
    workers: ClassVar[list[ThinkingScriptedWorker]] = []

    @classmethod
    def load(cls, model: str, *, model_name: str, threads: int) -> ThinkingScriptedWorker:
        cls.loads.append((model, model_name))
        gold = {} if model == BASE_MODEL else cls.gold

        def handler(request: GenerateRequest, index: int) -> str:
            prompt = request.prompt
            text = prompt if isinstance(prompt, str) else prompt[-1].content
            answer = next((g for q, g in gold.items() if q in text), "-1")
            return f"So it is {answer}. The answer is {answer}."

        worker = ThinkingScriptedWorker(model_name, handler)
        cls.workers.append(worker)
        return worker


@pytest.fixture
def scripted_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A pipeline whose text-CoT and CODI steps finished (k = 2), the benchmark's worker
    replaced by the scripted stand-in, and the evaluation items' golds for it."""
    layout = PipelineLayout(tmp_path / "pipeline")
    write_step(layout.finetune("text"), "finetune", {"base_model": BASE_MODEL},
               {"examples": 10, "epochs": 1}, seconds=3600.0, threads=2)  # fmt: skip
    write_step(layout.codi, "codi", {"thoughts": 2}, {"examples": 10}, seconds=1800.0, threads=2)
    monkeypatch.setattr(latent, "TransformersWorker", ScriptedLoader)
    monkeypatch.setattr(ScriptedLoader, "loads", [])
    monkeypatch.setattr(ScriptedLoader, "workers", [])
    kept, _ = latent.held_out_items(
        argparse.Namespace(seed=EVAL_SEEDS_FROM, limit=3, pipeline=layout.root)
    )
    monkeypatch.setattr(ScriptedLoader, "gold", {i.query.text: i.gold for i in kept})
    return layout.root


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["benchmarks.latent", *args])
    latent.main()


def test_a_run_resumes_and_rebuilds_from_its_run_files(
    scripted_models: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every finished arm answers the held-out items into its run file (the continuous
    arm's thoughts counted as latent tokens); a rerun loads each model again but answers
    nothing twice; ``--from-runs`` rebuilds the same rows, keeping the measured machine."""
    results = tmp_path / "results"
    args = ["--pipeline", str(scripted_models), "--limit", "3", "--max-tokens", "32",
            "--concurrency", "2", "--results", str(results)]  # fmt: skip
    _main(monkeypatch, *args)
    assert [name for _, name in ScriptedLoader.loads] == ["base", "text_cot", "continuous"]
    assert sum(len(w.requests) for w in ScriptedLoader.workers) == 9
    data = json.loads((results / "latent.json").read_text())
    rows = {r["arm"]: r for r in data["rows"]}
    assert list(rows) == ["base", "text_cot", "continuous"]
    assert (rows["base"]["accuracy"], rows["text_cot"]["accuracy"]) == (0.0, 1.0)
    assert rows["continuous"]["latent_tokens_mean"] == 2.0
    assert rows["continuous"]["thoughts"] == 2
    assert rows["continuous"]["text_tokens_mean"] == rows["text_cot"]["trace_tokens_mean"]
    assert data["summary"]["dropped_as_training_questions"] == 0
    assert data["summary"]["training_budget"]["cpu_hours"] == 3.0
    assert [c["method"] for c in data["comparisons"]] == ["base", "continuous"]
    assert "continuous" in data["summary"]["goal"]
    _, records = read_records(latent.run_file("continuous", results))
    assert {r["latent_tokens"] for r in records.values()} == {2}

    _main(monkeypatch, *args)
    assert sum(len(w.requests) for w in ScriptedLoader.workers) == 9  # all resumed
    assert len(ScriptedLoader.loads) == 3  # a finished arm loads no model

    previous = json.loads((results / "latent.json").read_text())
    previous["machine"] = {"measured_on": "elsewhere"}
    (results / "latent.json").write_text(json.dumps(previous))
    capsys.readouterr()
    _main(monkeypatch, "--from-runs", "--only", "text_cot", "continuous", *args)
    rebuilt = json.loads((results / "latent.json").read_text())
    assert rebuilt["machine"] == {"measured_on": "elsewhere"}
    assert [r["arm"] for r in rebuilt["rows"]] == ["text_cot", "continuous"]
    assert rebuilt["summary"]["dropped_as_training_questions"] is None
    assert len(ScriptedLoader.loads) == 3  # no model loaded
    assert "latent reasoning, 3 items, seed 1000" in capsys.readouterr().out


def test_a_run_file_of_other_settings_is_not_resumed(
    scripted_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rerun with another --max-tokens refuses the arm's run file instead of mixing."""
    base = ["--pipeline", str(scripted_models), "--limit", "3", "--only", "base",
            "--results", str(tmp_path)]  # fmt: skip
    _main(monkeypatch, *base, "--max-tokens", "32")
    with pytest.raises(ValueError, match="max_tokens"):
        _main(monkeypatch, *base, "--max-tokens", "64")


def test_unknown_arms_are_refused_by_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--only`` takes the four arm names and nothing else."""
    with pytest.raises(SystemExit) as info:
        _main(monkeypatch, "--only", "coconut")
    assert info.value.code == 2
    assert "invalid choice: 'coconut'" in capsys.readouterr().err
