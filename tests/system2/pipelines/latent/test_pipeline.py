"""The latent training pipeline on a tiny random model: chains (gold rationales and a
scripted generator), the VQ-VAE, both fine-tune arms, CODI, and resumability."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from structlog.testing import capture_logs

from orchestrator import GreedyConfig, Orchestrator
from policies import FixedPolicy
from system2.pipelines.latent import (
    ARMS,
    PipelineLayout,
    ReplacementSchedule,
    StepConfigMismatch,
    TrainSettings,
    VQVAEStepSettings,
    build_examples,
    check_training_seed,
    codebook_for,
    collect_chains,
    encode_chain,
    gold_chain,
    kept_chains,
    load_vqvae,
    read_step,
    run_finetune_arm,
    run_vqvae_step,
)
from tests.system2.pipelines.latent.tiny_pipeline import (
    base_checkpoint,
    printable_tokenizer,
    synthetic_items,
)
from workers import GenerateRequest, TransformersWorker
from workers.base import SamplingParams
from workers.latent import read_latent_vocabulary
from workers.scripted import ScriptedWorker

VQVAE = VQVAEStepSettings(chunk_tokens=8, dim=16, layers=1, heads=2, steps=10, batch_size=16)
TWO_STEPS = TrainSettings(batch_size=4, max_steps=2, mode="last_layers", layers=1)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_gold_chain_ends_as_the_prompt_asks() -> None:
    """The gold rationale's ``#### N`` becomes ``The answer is N.``; the rest is kept."""
    item = synthetic_items(1)[0]
    chain = gold_chain(item)
    assert chain is not None
    assert chain.endswith("\nThe answer is 13.")
    assert "####" not in chain
    assert chain.startswith("Ann has 3 apples")


def test_training_seeds_stay_below_the_eval_seeds() -> None:
    """Seeds from 1000 on are evaluation's: a training run there is refused by name."""
    check_training_seed(0, 2000)
    with pytest.raises(ValueError, match="kept for evaluation"):
        check_training_seed(1000, 10)


async def test_chains_keep_right_answers_and_record_their_source(tmp_path: Path) -> None:
    """A scripted generator right on item 0 and wrong on item 1: ``generator`` keeps only
    item 0 (source greedy); ``generator+gold`` falls back to the gold rationale for item 1."""
    items = synthetic_items(2)

    def handler(request: GenerateRequest, index: int) -> str:
        right = "Ann has 3 apples" in str(request.prompt)
        return "3 + 10 = 13. The answer is 13." if right else "The answer is 7."

    worker = ScriptedWorker("scripted", handler)
    orch = Orchestrator({"scripted": worker}, FixedPolicy(("scripted",), GreedyConfig()))
    only = await collect_chains(
        items, tmp_path / "a.jsonl", source="generator", answer_fn=orch.answer, progress=False
    )
    assert [(r["status"], r["source"]) for r in only] == [("kept", "greedy"), ("dropped", None)]
    assert only[0]["text"] == "3 + 10 = 13. The answer is 13."
    both = await collect_chains(
        items, tmp_path / "b.jsonl", source="generator+gold", answer_fn=orch.answer,
        progress=False,
    )  # fmt: skip
    assert [r["source"] for r in both] == ["greedy", "gold"]
    assert len(kept_chains(tmp_path / "b.jsonl")) == 2
    with pytest.raises(ValueError, match="needs an answer_fn"):
        await collect_chains(items, tmp_path / "c.jsonl", source="generator")


async def test_encoding_splits_reasoning_and_answer(tmp_path: Path) -> None:
    """The answer is the final line plus EOS; the cue points at the last token of ``The
    answer is`` (one token per character here)."""
    await collect_chains(synthetic_items(1), tmp_path / "c.jsonl", source="gold", progress=False)
    tokenizer = printable_tokenizer()
    chain = encode_chain(tokenizer, kept_chains(tmp_path / "c.jsonl")[0])
    assert tokenizer.decode(list(chain.answer_ids[:-1])) == "The answer is 13."
    assert chain.answer_ids[-1] == tokenizer.eos_token_id
    assert chain.cue == len("The answer is") - 1
    assert tokenizer.decode(list(chain.cot_ids)).endswith("13 apples.\n")


def test_codebook_shrinks_on_small_data() -> None:
    """At most one code per 4 chunks, at most the requested size, at least one."""
    assert codebook_for(1024, 10_800) == 1024
    assert codebook_for(1024, 400) == 100
    assert codebook_for(1024, 3) == 1


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineLayout, Path]:
    """Chains of 8 synthetic items and a tiny base model (no step run yet)."""
    import asyncio

    root = tmp_path_factory.mktemp("latent")
    base = base_checkpoint(root / "base")
    layout = PipelineLayout(root / "run")
    layout.root.mkdir()
    asyncio.run(collect_chains(synthetic_items(8), layout.chains, source="gold", progress=False))
    return layout, base


def test_pipeline_end_to_end_and_resumable(pipeline: tuple[PipelineLayout, Path]) -> None:
    """VQ-VAE, then 2 steps of each arm; the latent checkpoint serves through the
    transformers worker with its latent ids dropped from the text; a rerun skips every
    finished step, and a changed config is refused by key."""
    layout, base = pipeline
    data = layout.training_chains(printable_tokenizer(), max_length=1000)
    upstream = data.upstream(str(base))
    vocab_size = len(printable_tokenizer())
    marker = run_vqvae_step(
        data.chains, vocab_size=vocab_size, out=layout.vqvae, settings=VQVAE,
        upstream=upstream, threads=1,
    )  # fmt: skip
    assert marker.results["codebook_size"] == codebook_for(1024, marker.results["chunks"])
    schedule = ReplacementSchedule(seed=0)
    for arm in ARMS:
        done = run_finetune_arm(
            arm, data.chains, base_model=str(base), vqvae_dir=layout.vqvae,
            out=layout.finetune(arm), settings=TWO_STEPS, schedule=schedule,
            upstream=upstream, threads=1,
        )  # fmt: skip
        assert done.results["steps"] == 2
        assert done.results["examples"] == 8
    latent, text = read_step(layout.finetune("latent")), read_step(layout.finetune("text"))
    assert latent is not None
    assert text is not None
    assert latent.results["target_tokens_mean"] < text.results["target_tokens_mean"]
    vocabulary = read_latent_vocabulary(layout.finetune("latent"))
    assert vocabulary is not None
    assert vocabulary.vqvae == "vqvae"
    assert vocabulary.count == load_vqvae(layout.vqvae).config.codebook_size
    assert read_latent_vocabulary(layout.finetune("text")) is None

    weights = layout.finetune("latent") / "model.safetensors"
    written = weights.stat().st_mtime_ns
    with capture_logs() as logs:
        run_vqvae_step(
            data.chains, vocab_size=vocab_size, out=layout.vqvae, settings=VQVAE,
            upstream=upstream, threads=1,
        )  # fmt: skip
        run_finetune_arm(
            "latent", data.chains, base_model=str(base), vqvae_dir=layout.vqvae,
            out=layout.finetune("latent"), settings=TWO_STEPS, schedule=schedule,
            upstream=upstream, threads=1,
        )  # fmt: skip
    assert [e["event"] for e in logs] == ["latent.vqvae.skipped", "latent.finetune.skipped"]
    assert weights.stat().st_mtime_ns == written
    with pytest.raises(StepConfigMismatch, match=r"max_steps"):
        run_finetune_arm(
            "latent", data.chains, base_model=str(base), vqvae_dir=layout.vqvae,
            out=layout.finetune("latent"), upstream=upstream, threads=1, schedule=schedule,
            settings=TrainSettings(batch_size=4, max_steps=3, mode="last_layers", layers=1),
        )  # fmt: skip


async def test_latent_checkpoint_decodes_without_latent_ids(
    pipeline: tuple[PipelineLayout, Path],
) -> None:
    """The fine-tuned latent model loads as an ordinary checkpoint; whatever it generates,
    its text holds no latent token and its usage counts the latent ids apart."""
    layout, _ = pipeline
    if read_step(layout.finetune("latent")) is None:
        pytest.skip("needs the end-to-end test's checkpoint")
    worker = TransformersWorker.load(layout.finetune("latent"))
    try:
        vocabulary = worker.latent.vocabulary
        assert vocabulary is not None
        result = await worker.generate(
            GenerateRequest(prompt="Ann has", params=SamplingParams(max_tokens=12))
        )
        completion = result.completions[0]
        assert "<|" not in completion.text
        visible = worker.tokenizer.decode(
            vocabulary.text_ids(completion.token_ids), skip_special_tokens=True
        )
        assert completion.text == visible
        assert result.usage.latent_tokens == vocabulary.count_latent(completion.token_ids)
    finally:
        await worker.close()


def test_text_arm_is_the_latent_arm_with_nothing_replaced(
    pipeline: tuple[PipelineLayout, Path],
) -> None:
    """Same prompts and answers in the same order; the text arm has m = 0 everywhere and
    the latent arm's replaced examples are delimited."""
    layout, _ = pipeline
    data = layout.training_chains(printable_tokenizer(), max_length=1000)
    text = build_examples(data.chains, "text")
    assert all(e.m == 0 for e in text)
    assert [e.prompt_ids for e in text] == [c.prompt_ids for c in data.chains]
    assert all(
        e.target_ids == c.cot_ids + c.answer_ids for e, c in zip(text, data.chains, strict=True)
    )
    with pytest.raises(ValueError, match="needs the VQ-VAE"):
        build_examples(data.chains, "latent")
