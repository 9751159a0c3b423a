"""The verifier through the worker seam: top alternatives, token decoding, per-row guidance."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import torch

from tests.workers.tiny_model import EOS, PAD, CharTokenizer, tiny_model
from tests.workers.verifier.helpers import random_verifier
from workers.base import GenerateRequest, Guidance, SamplingParams, ScoreRequest
from workers.decoding import DecodeRow, decode_batch
from workers.errors import UnsupportedRequest
from workers.openai.worker import OpenAIWorker
from workers.pool import WorkerPool
from workers.sampling import RowSampling
from workers.scripted import ScriptedWorker, cycle_texts
from workers.transformers_worker import TransformersWorker
from workers.verifier import TokenStepVerifier, VerifierLogitsProcessor

TOKENIZER = CharTokenizer()
PROMPTS = ("abc", "hello world", "x", "the cat sat")


def _worker(verifier: bool = True) -> TransformersWorker:
    return TransformersWorker(
        tiny_model(),
        TOKENIZER,
        model_name="tiny",
        verifier=random_verifier() if verifier else None,
    )


async def test_top_logprobs_match_a_full_forward() -> None:
    """Every position's top-k (ids, log-probs) is the top-k of one plain forward pass."""
    worker = _worker(verifier=False)
    try:
        conts = ("de", "xyz q", "a")
        result = await worker.score(ScoreRequest(prompt="abc", continuations=conts, top_logprobs=4))
    finally:
        await worker.close()
    for cont, scored in zip(conts, result.scores, strict=True):
        ids = TOKENIZER.encode("abc") + TOKENIZER.encode(cont)
        with torch.no_grad():
            logits = worker.model(input_ids=torch.tensor([ids])).logits[0]
        logprobs = torch.log_softmax(logits.float(), -1)
        assert len(scored.top_alternatives) == len(cont)
        for i, alternatives in enumerate(scored.top_alternatives):
            values, top = torch.topk(logprobs[2 + i], 4)
            assert [a.token_id for a in alternatives] == top.tolist()
            assert [a.logprob for a in alternatives] == pytest.approx(values.tolist(), abs=1e-4)
        assert scored.token_logprobs == pytest.approx(
            [float(logprobs[2 + i, t]) for i, t in enumerate(TOKENIZER.encode(cont))], abs=1e-4
        )


async def test_top_logprobs_default_is_empty_and_scores_unchanged() -> None:
    """Without top_logprobs nothing extra comes back and the log-probs are the same."""
    worker = _worker(verifier=False)
    try:
        plain = await worker.score(ScoreRequest(prompt="abc", continuations=("de",)))
        topped = await worker.score(
            ScoreRequest(prompt="abc", continuations=("de",), top_logprobs=2)
        )
    finally:
        await worker.close()
    assert plain.scores[0].top_alternatives == ()
    assert plain.scores[0].token_logprobs == topped.scores[0].token_logprobs


async def test_decode_tokens_through_the_seam_and_a_pool() -> None:
    worker = _worker(verifier=False)
    pool = WorkerPool("tiny", [worker])
    try:
        ids = TOKENIZER.encode("hi there")
        assert await worker.decode_tokens(ids) == "hi there"
        assert await pool.decode_tokens([*ids, EOS]) == "hi there"  # special tokens dropped
        assert not pool.supports_guidance
    finally:
        await pool.close()
    with pytest.raises(UnsupportedRequest, match="cannot decode"):
        await ScriptedWorker("s", cycle_texts(["x"])).decode_tokens([1])


async def test_beta_zero_through_the_worker_equals_unguided() -> None:
    """beta = 0 decodes token for token as no guidance, greedy and seeded sampling."""
    worker = _worker()
    off = Guidance(beta=0.0)
    try:
        for params in (
            SamplingParams(max_tokens=8),
            SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=5),
        ):
            for prompt in PROMPTS:
                plain = await worker.generate(GenerateRequest(prompt=prompt, params=params))
                guided_params = params.model_copy(update={"guidance": off})
                guided = await worker.generate(GenerateRequest(prompt=prompt, params=guided_params))
                assert [c.token_ids for c in guided.completions] == [
                    c.token_ids for c in plain.completions
                ]
    finally:
        await worker.close()
    stats = worker.guidance_stats
    assert stats is not None
    assert stats.verified_rows == 0


def test_unguided_rows_of_a_mixed_batch_are_unchanged() -> None:
    """In one decode batch, unguided rows decode exactly as alone; guided rows as alone."""
    model = tiny_model()
    processor = VerifierLogitsProcessor(random_verifier())
    strong = Guidance(beta=3.0, alpha=0.05, top_k=6)
    ids = [tuple(TOKENIZER.encode(p)) for p in PROMPTS]
    sampled = RowSampling(1.0, top_p=0.9)
    rows = [
        DecodeRow(ids[0], RowSampling(0.0), 9),
        DecodeRow(ids[1], RowSampling(0.0), 9, guidance=strong),
        DecodeRow(ids[2], sampled, 9, seed=4),
        DecodeRow(ids[3], sampled, 9, seed=7, guidance=strong),
        DecodeRow(ids[0], RowSampling(0.0), 5, guidance=Guidance(beta=0.0)),
    ]

    def decode(batch: list[DecodeRow]) -> list[list[int]]:
        out = decode_batch(
            model,
            TOKENIZER,
            batch,
            eos_token_ids=frozenset({EOS}),
            pad_token_id=PAD,
            guidance_processor=processor,
        )
        return [r.token_ids for r in out]

    mixed = decode(rows)
    alone = [decode([row])[0] for row in rows]
    assert mixed == alone
    unguided = [DecodeRow(r.prompt_ids, r.sampling, r.max_tokens, seed=r.seed) for r in rows]
    plain = [decode([row])[0] for row in unguided]
    assert mixed[0] == plain[0]
    assert mixed[2] == plain[2]
    assert mixed[4] == plain[4]
    assert mixed[1] != plain[1] or mixed[3] != plain[3]  # guidance did something


async def test_concurrent_guided_and_plain_requests_share_a_batch_safely() -> None:
    """A guided request batched with plain ones leaves their outputs as without a verifier."""
    plain_worker, worker = _worker(verifier=False), _worker()
    params = SamplingParams(n=2, temperature=0.9, max_tokens=7, seed=3)
    guided = params.model_copy(update={"guidance": Guidance(beta=2.0)})
    try:
        expected = [
            await plain_worker.generate(GenerateRequest(prompt=p, params=params)) for p in PROMPTS
        ]
        results = await asyncio.gather(
            worker.generate(GenerateRequest(prompt="zz top", params=guided)),
            *(worker.generate(GenerateRequest(prompt=p, params=params)) for p in PROMPTS),
        )
    finally:
        await asyncio.gather(plain_worker.close(), worker.close())
    for want, got in zip(expected, results[1:], strict=True):
        assert [c.token_ids for c in got.completions] == [c.token_ids for c in want.completions]
    stats = worker.guidance_stats
    assert stats is not None
    assert stats.verified_rows + stats.skipped_rows > 0


async def test_guidance_without_a_verifier_is_refused() -> None:
    request = GenerateRequest(prompt="abc", params=SamplingParams(guidance=Guidance()))
    worker = _worker(verifier=False)
    assert not worker.supports_guidance
    assert _worker().supports_guidance
    with pytest.raises(UnsupportedRequest, match="no token verifier"):
        await worker.generate(request)
    with pytest.raises(UnsupportedRequest):
        await ScriptedWorker("s", cycle_texts(["x"])).generate(request)
    assert ScriptedWorker("s", cycle_texts(["x"]), guidance=True).supports_guidance
    transport = httpx.MockTransport(lambda r: httpx.Response(500))
    http = OpenAIWorker("http://x", model="m", transport=transport)
    with pytest.raises(UnsupportedRequest, match="guidance"):
        await http.generate(request)


def test_guidance_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="top_k cap"):
        Guidance(alpha=0.0, top_k=0)
    with pytest.raises(ValueError, match="greater than or equal"):
        Guidance(beta=-1.0)
    assert SamplingParams().guidance is None


async def test_token_step_verifier_is_the_attached_verifier() -> None:
    """A transformers worker with a verifier scores steps with it (mean token score, a
    logit); a pool hands out its first replica's."""
    worker, other = _worker(), _worker()
    try:
        steps = worker.token_step_verifier()
        assert isinstance(steps, TokenStepVerifier)
        assert (steps.verifier, steps.tokenizer, steps.scale) == (
            worker.verifier,
            worker.tokenizer,
            "logit",
        )
        pooled = WorkerPool("tiny", [worker, other]).token_step_verifier()
        assert isinstance(pooled, TokenStepVerifier)
        assert pooled.verifier is worker.verifier
    finally:
        await asyncio.gather(worker.close(), other.close())


def test_backends_without_a_token_verifier_say_how_to_attach_one() -> None:
    """No verifier (transformers without one, scripted, HTTP): ``UnsupportedRequest``
    naming the model and the config key and command that give it one."""
    transport = httpx.MockTransport(lambda r: httpx.Response(500))
    for worker in (
        _worker(verifier=False),
        ScriptedWorker("scripted", cycle_texts(["x"])),
        OpenAIWorker("http://x", model="served", transport=transport),
    ):
        with pytest.raises(UnsupportedRequest, match=r"verifier: \{path: DIR\}") as info:
            worker.token_step_verifier()
        assert info.value.model == worker.model_name
        assert "system2 verifier train" in info.value.reason
