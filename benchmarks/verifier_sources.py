"""Verifier training data per hour of generation: rollout triplets vs path triplets.

Two triplet files of one generator (``system2 verifier synthesize``: rollouts from explored
positions; ``system2 verifier triplets-from-runs``: where sampled paths of one question share
a prefix and then part, one ending right and one wrong). Per source, a shared-trunk head
(``workers.verifier.trunk_head``) is trained on that source's triplets alone, with the same
settings and seed, and both heads are validated on the same held-out pairs: the items are
split once over the union of both files' items (``--val-fraction``, seeded), every triplet
of a held-out item, whichever file it comes from, is a validation pair, and no triplet of a
held-out item is trained on. A pair is right when the head scores the good token above the
bad one; the two heads are compared pair by pair (exact McNemar).

Cost: what the triplet files record, nothing else. A rollout record's ``seconds`` is the
item's exploration (its rollouts' generation); a path record's ``seconds`` is only the
extraction, and its ``source_seconds`` the generation of the evaluation runs it reuses.
These are per-item wall seconds summed (items in flight together overlap, so the sum is
not a CPU time; the files record no CPU time); a file whose records lack them is reported
as "not recorded" and gets no per-hour figure. Gain: validation pairwise accuracy minus
1/2 (what an untrained head scores: U = 0 ties every pair); per generation hour: gain over
the source's generation hours (own + reused).

``--downstream``: greedy and trunk-guided greedy with each head on ``--limit`` items of
``--dataset`` at ``--eval-seed`` (refused when an eval item is among the training items),
on the same items; each guided mode is compared with greedy and with the other, and its
gain over greedy is put per generation hour too. Run files go under
``results/runs/verifier_sources/`` (resumable); the table to
``results/verifier_sources.json``.

Run: python -m benchmarks.verifier_sources
     --rollouts benchmarks/results/runs/verifier/triplets.jsonl
     --paths benchmarks/results/runs/verifier/path_triplets.jsonl
     [--val-fraction 0.3] [--rank 16] [--epochs 20] [--downstream --limit 150]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import RESULTS, Comparison, accuracy_ci, item_correctness, report
from orchestrator import Orchestrator
from orchestrator.strategies.config import GreedyConfig, StrategyConfig, VerifierGuidedConfig
from policies import FixedPolicy
from system2.evaluation import load_dataset, run_eval
from system2.pipelines.verifier_triplets import prompt_from_json, read_triplets
from workers.chat_prompt import encode_prompt
from workers.verifier import (
    TrainingExample,
    TrainSettings,
    TrunkHead,
    examples_from_records,
    split_by_item,
    train_trunk_head,
    trunk_features,
)
from workers.verifier.trunk_head import output_embeddings
from workers.verifier.trunk_train import TrunkFeatures

__all__ = [
    "SOURCES",
    "SourceCost",
    "comparisons",
    "cost_notes",
    "downstream_fields",
    "pair_keys",
    "pair_outcomes",
    "read_source",
    "shared_split",
    "source_cost",
    "source_row",
    "train_heads",
]

SOURCES = ("rollouts", "paths")
HOUR = 3600.0


@dataclass(frozen=True)
class SourceCost:
    """What a triplet file records of its cost (None: not recorded in every record)."""

    triplets: int
    items: int
    generated_tokens: int
    own_seconds: float | None
    reused_tokens: int
    reused_seconds: float | None

    @property
    def generation_hours(self) -> float | None:
        """Own plus reused seconds, in hours (None when either is not recorded)."""
        if self.own_seconds is None or self.reused_seconds is None:
            return None
        return (self.own_seconds + self.reused_seconds) / HOUR


def _recorded(records: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [r.get(key) for r in records]
    if not values or any(v is None for v in values):
        return None
    return sum(float(v) for v in values if v is not None)


def source_cost(
    header: Mapping[str, Any] | None, records: Sequence[Mapping[str, Any]]
) -> SourceCost:
    """The cost a triplet file records (module doc); a path file's reused generation is
    its records' ``source_seconds``, a rollout file reuses nothing."""
    reuses = (header or {}).get("source") == "paths"
    return SourceCost(
        triplets=sum(len(r.get("triplets") or ()) for r in records),
        items=len(records),
        generated_tokens=sum(int(r.get("completion_tokens") or 0) for r in records),
        own_seconds=_recorded(records, "seconds"),
        reused_tokens=sum(int(r.get("source_completion_tokens") or 0) for r in records),
        reused_seconds=_recorded(records, "source_seconds") if reuses else 0.0,
    )


def read_source(path: Path) -> tuple[str, list[dict[str, Any]], SourceCost]:
    """A triplet file's generator, item records and cost; ValueError naming the file when
    it is missing or records no generator."""
    if not path.is_file():
        raise ValueError(f"{path}: no such triplet file")
    header, records = read_triplets(path)
    generator = (header or {}).get("generator") or (header or {}).get("model")
    if not generator:
        raise ValueError(f"{path}: the header records no generator")
    rows = list(records.values())
    return str(generator), rows, source_cost(header, rows)


def shared_split(
    examples: Mapping[str, Sequence[TrainingExample]], val_fraction: float, seed: int
) -> tuple[dict[str, list[TrainingExample]], list[tuple[str, TrainingExample]]]:
    """(train per source, validation as (source, example)): the items of all sources are
    split once (``split_by_item``), so both heads see the same validation pairs and no
    source trains on a held-out item."""
    union = [e for group in examples.values() for e in group]
    _, held = split_by_item(union, val_fraction, seed)
    held_items = {e.item for e in held}
    if not held_items:
        raise ValueError("no item is held out for validation (raise --val-fraction)")
    train = {s: [e for e in group if e.item not in held_items] for s, group in examples.items()}
    for source, kept in train.items():
        if not kept:
            raise ValueError(f"source {source!r} has no triplets left to train on")
    val = [(s, e) for s, group in examples.items() for e in group if e.item in held_items]
    return train, val


def pair_keys(val: Sequence[tuple[str, TrainingExample]]) -> list[str]:
    """One id per validation triplet, in ``trunk_features`` order."""
    return [
        f"{source}:{example.item}:{k}:{j}"
        for k, (source, example) in enumerate(val)
        for j in range(len(example.triplets))
    ]


@torch.no_grad()
def pair_outcomes(
    head: TrunkHead,
    embeddings: torch.Tensor,
    features: Sequence[TrunkFeatures],
    keys: Sequence[str],
) -> dict[str, bool]:
    """Validation pair id -> whether ``head`` scores the good token above the bad one (a
    tie is wrong, so an untrained head gets none right)."""
    right: list[bool] = []
    for f in features:
        good = head.score_tokens(f.hidden, embeddings[f.positive])
        bad = head.score_tokens(f.hidden, embeddings[f.negative])
        right.extend(bool(x) for x in (good > bad))
    if len(right) != len(keys):
        raise ValueError(f"{len(keys)} pair ids for {len(right)} pairs")
    return dict(zip(keys, right, strict=True))


def per_hour(gain: float | None, hours: float | None) -> float | None:
    return None if gain is None or not hours else gain / hours


def source_row(
    source: str, cost: SourceCost, train_triplets: int, outcomes: Mapping[str, bool]
) -> dict[str, Any]:
    """One table row: the source's triplets and cost, its head's validation accuracy [95%
    interval], its gain over an untrained head (1/2) and that gain per generation hour."""
    accuracy = _accuracy(outcomes)
    hours = cost.generation_hours
    return {
        "source": source,
        "triplets": cost.triplets,
        "items": cost.items,
        "train_triplets": train_triplets,
        "val_pairs": len(outcomes),
        "val_accuracy": accuracy,
        "val_accuracy_ci": accuracy_ci(outcomes),
        "val_gain": accuracy - 0.5,
        "generated_tokens": cost.generated_tokens,
        "reused_tokens": cost.reused_tokens,
        "own_hours": None if cost.own_seconds is None else cost.own_seconds / HOUR,
        "reused_hours": None if cost.reused_seconds is None else cost.reused_seconds / HOUR,
        "generation_hours": hours,
        "val_gain_per_hour": per_hour(accuracy - 0.5, hours),
    }


def train_heads(
    model: Any,
    examples: Mapping[str, Sequence[TrainingExample]],
    settings: TrainSettings,
    *,
    rank: int,
    val_fraction: float,
) -> tuple[dict[str, TrunkHead], dict[str, dict[str, bool]], dict[str, int]]:
    """A head per source trained on its own training triplets (same settings, same seed),
    each one's outcomes on the shared validation pairs, and its training triplet count."""
    train, val = shared_split(examples, val_fraction, settings.seed)
    features = trunk_features(model, [e for _, e in val])
    keys = pair_keys(val)
    embeddings = output_embeddings(model).detach()
    heads, outcomes, counts = {}, {}, {}
    for source, kept in train.items():
        torch.manual_seed(settings.seed)
        head = TrunkHead.from_generator(model, rank=rank, seed=settings.seed)
        metrics = train_trunk_head(head, model, kept, [], settings)
        heads[source], counts[source] = head.eval(), metrics.train_triplets
        outcomes[source] = pair_outcomes(head, embeddings, features, keys)
    return heads, outcomes, counts


async def downstream(
    model: Any,
    tokenizer: Any,
    generator: str,
    heads: Mapping[str, TrunkHead],
    args: argparse.Namespace,
    trained_items: set[str],
) -> dict[str, dict[str, bool]]:
    """Greedy and guided greedy with each head on the same eval items: mode -> item id ->
    correct (resumable run files)."""
    from workers.transformers_worker import TransformersWorker

    items = load_dataset(args.dataset, limit=args.limit, seed=args.eval_seed)
    overlap = sorted({i.id for i in items} & trained_items)
    if overlap:
        raise ValueError(
            f"eval items {overlap[:3]} are among the training items: pick another --eval-seed"
        )
    guided = VerifierGuidedConfig(beta=args.beta, max_tokens=args.max_tokens)
    modes: list[tuple[str, TrunkHead | None, StrategyConfig]] = [
        ("greedy", None, GreedyConfig(max_tokens=args.max_tokens)),
        *((f"guided_{source}", head, guided) for source, head in heads.items()),
    ]
    out: dict[str, dict[str, bool]] = {}
    for mode, head, strategy in modes:
        worker = TransformersWorker(model, tokenizer, model_name=generator, verifier=head)
        path = RESULTS / "runs" / "verifier_sources" / f"{args.dataset}_{mode}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        run_config = {"dataset": args.dataset, "limit": args.limit, "seed": args.eval_seed,
                      "model": generator, "strategy": strategy.model_dump(),
                      "training": training_fields(args)}  # fmt: skip
        try:
            orch = Orchestrator({generator: worker}, FixedPolicy((generator,), strategy))
            await run_eval(items, orch.answer, path, run_config=run_config)
        finally:
            await worker.close()
        out[mode] = item_correctness(path)
    return out


def training_fields(args: argparse.Namespace) -> dict[str, Any]:
    """What a downstream run's header records of how its heads were trained."""
    return {"rollouts": str(args.rollouts), "paths": str(args.paths), "rank": args.rank,
            "epochs": args.epochs, "lr": args.lr, "val_fraction": args.val_fraction,
            "seed": args.seed}  # fmt: skip


def downstream_fields(
    rows: list[dict[str, Any]], runs: Mapping[str, Mapping[str, bool]]
) -> list[dict[str, Any]]:
    """``rows`` with each source's guided greedy accuracy [95% interval], its gain over
    greedy on the same items, and that gain per generation hour."""
    base = _accuracy(runs["greedy"])
    out = []
    for row in rows:
        guided = runs[f"guided_{row['source']}"]
        gain = _accuracy(guided) - base
        out.append({**row, "guided_accuracy": _accuracy(guided),
                    "guided_accuracy_ci": accuracy_ci(guided), "guided_gain": gain,
                    "guided_gain_per_hour": per_hour(gain, row["generation_hours"])})  # fmt: skip
    return out


def _accuracy(correct: Mapping[str, bool]) -> float:
    if not correct:
        raise ValueError("no items to take an accuracy over")
    return sum(correct.values()) / len(correct)


def comparisons(
    outcomes: Mapping[str, Mapping[str, bool]], runs: Mapping[str, Mapping[str, bool]]
) -> list[Comparison]:
    """The heads against each other on the validation pairs; downstream, each guided mode
    against greedy and against the other guided mode, on the same items."""
    first, second = SOURCES
    out = [Comparison.of("validation pairs", (first, outcomes[first]), (second, outcomes[second]))]
    if runs:
        greedy = ("greedy", runs["greedy"])
        guided = [(f"guided_{s}", runs[f"guided_{s}"]) for s in SOURCES]
        out += [Comparison.of("downstream", greedy, mode) for mode in guided]
        out.append(Comparison.of("downstream", guided[0], guided[1]))
    return out


def cost_notes(costs: Mapping[str, SourceCost]) -> list[str]:
    """What the files do not record (said in the output instead of a number)."""
    lacking = [(s, "seconds") for s, c in costs.items() if c.own_seconds is None]
    lacking += [(s, "source_seconds") for s, c in costs.items() if c.reused_seconds is None]
    return [f"{s}: records lack {key!r}: its cost is not recorded" for s, key in lacking]


async def run(args: argparse.Namespace) -> None:
    from workers.transformers_worker import TransformersWorker

    try:
        read = {s: read_source(Path(getattr(args, s))) for s in SOURCES}
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    generators = {s: g for s, (g, _, _) in read.items()}
    if len(set(generators.values())) > 1:
        raise SystemExit(f"the triplet files come from different generators: {generators}")
    generator = generators[SOURCES[0]]
    loaded = TransformersWorker.load(generator, threads=args.threads)
    model, tokenizer = loaded.model, loaded.tokenizer
    await loaded.close()  # the model object stays; each mode gets a worker of its own

    def encode(prompt: Any) -> tuple[int, ...]:
        return encode_prompt(tokenizer, prompt_from_json(prompt))

    examples = {s: examples_from_records(records, encode) for s, (_, records, _) in read.items()}
    settings = TrainSettings(epochs=args.epochs, batch_size=8, head_lr=args.lr, seed=args.seed)
    heads, outcomes, counts = train_heads(
        model, examples, settings, rank=args.rank, val_fraction=args.val_fraction
    )
    costs = {s: cost for s, (_, _, cost) in read.items()}
    rows = [source_row(s, costs[s], counts[s], outcomes[s]) for s in SOURCES]
    runs: dict[str, dict[str, bool]] = {}
    if args.downstream:
        trained = {e.item for group in examples.values() for e in group}
        runs = await downstream(model, tokenizer, generator, heads, args, trained)
        rows = downstream_fields(rows, runs)
    report(
        "verifier_sources",
        rows,
        comparisons=comparisons(outcomes, runs),
        summary={
            "generator": generator,
            "training": training_fields(args),
            "cost": "per-item wall seconds summed, as recorded in the triplet files "
            "(items in flight together overlap; no CPU time is recorded)",
            "not_recorded": cost_notes(costs) or None,
            "greedy_accuracy": _accuracy(runs["greedy"]) if runs else None,
        },
        title=f"Trunk-head training data per generation hour, {generator}",
        results=RESULTS,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollouts", type=Path, required=True, help="rollout triplets file")
    parser.add_argument("--paths", type=Path, required=True, help="path triplets file")
    parser.add_argument("--val-fraction", type=float, default=0.3)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3, help="the head's learning rate")
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--downstream", action="store_true", help="also guided greedy on eval items"
    )
    parser.add_argument("--dataset", default="gsm_symbolic")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--eval-seed", type=int, default=1000, help="held-out item seed")
    parser.add_argument("--beta", type=float, default=0.25)
    parser.add_argument("--max-tokens", type=int, default=384)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
