"""Trunk-head guidance in the transformers worker's decode loop, against naive decoding."""

from __future__ import annotations

import torch

from tests.workers.tiny_model import EOS, CharTokenizer, tiny_model
from tests.workers.verifier.trunk_helpers import random_head
from workers.base import GenerateRequest, Guidance, SamplingParams
from workers.scripted import ScriptedWorker, cycle_texts
from workers.transformers_worker import TransformersWorker
from workers.verifier import TrunkHead, TrunkStepVerifier
from workers.verifier.scoring import plausible_candidates

TOKENIZER = CharTokenizer()
PROMPTS = ("abc", "hello world", "x", "the cat sat")
STEPS = 10


def _worker(head: TrunkHead | None) -> TransformersWorker:
    model = tiny_model()
    return TransformersWorker(
        model, TOKENIZER, model_name="tiny", verifier=head if head is not None else None
    )


def _naive_guided_greedy(
    model: torch.nn.Module, head: TrunkHead, prompt: list[int], guidance: Guidance, steps: int
) -> list[int]:
    """Greedy over z + beta * s on V_t, each step a fresh full forward (no cache), each
    candidate scored on its own: e_xᵀ U Vᵀ h with h from ``output_hidden_states``."""
    ids = list(prompt)
    out: list[int] = []
    embeddings = model.get_output_embeddings().weight
    for _ in range(steps):
        with torch.no_grad():
            full = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
            logits = full.logits[0, -1].float()
            h = full.hidden_states[-1][0, -1]
            allowed = plausible_candidates(logits[None], guidance.alpha, guidance.top_k).row(0)
            bonus = {v: float(embeddings[v] @ head.U @ head.V.T @ h) for v in allowed}
        if len(allowed) == 1:
            bonus = dict.fromkeys(allowed, 0.0)
        best = max(allowed, key=lambda v: logits[v].item() + guidance.beta * bonus[v])
        out.append(best)
        if best == EOS:
            break
        ids.append(best)
    return out


async def test_guided_greedy_equals_naive_guided_greedy() -> None:
    """The decode loop's hidden states and the head's batched scores give, token for token,
    the greedy decode of a from-scratch computation; and guidance changes the output."""
    model = tiny_model()
    head = random_head(model, seed=3)
    worker = TransformersWorker(model, TOKENIZER, model_name="tiny", verifier=head)
    guidance = Guidance(beta=4.0, alpha=0.05, top_k=6)
    params = SamplingParams(max_tokens=STEPS, guidance=guidance)
    changed = False
    try:
        results = [await worker.generate(GenerateRequest(prompt=p, params=params)) for p in PROMPTS]
        plain = [
            await worker.generate(
                GenerateRequest(prompt=p, params=SamplingParams(max_tokens=STEPS))
            )
            for p in PROMPTS
        ]
    finally:
        await worker.close()
    for prompt, result, unguided in zip(PROMPTS, results, plain, strict=True):
        want = _naive_guided_greedy(model, head, TOKENIZER.encode(prompt), guidance, STEPS)
        assert list(result.completions[0].token_ids) == want
        changed |= result.completions[0].token_ids != unguided.completions[0].token_ids
    assert changed
    stats = worker.guidance_stats
    assert stats is not None
    assert stats.verified_rows > 0


async def test_untrained_head_or_beta_zero_is_plain_decoding() -> None:
    """U = 0 (any beta) and beta = 0 (any head) decode greedy token for token as no
    verifier, and beta = 0 seeded sampling too; unguided rows share the batch unchanged."""
    plain = _worker(None)
    untrained = _worker(TrunkHead.from_generator(tiny_model(), rank=4))
    trained = _worker(random_head(seed=3))
    greedy = SamplingParams(n=2, max_tokens=STEPS)
    sampled = SamplingParams(n=3, temperature=1.0, max_tokens=STEPS, seed=7)
    try:
        for prompt in PROMPTS:
            want = await plain.generate(GenerateRequest(prompt=prompt, params=greedy))
            want_sampled = await plain.generate(GenerateRequest(prompt=prompt, params=sampled))
            for worker, guidance, params, expected in (
                (untrained, Guidance(beta=5.0), greedy, want),
                (trained, Guidance(beta=0.0), greedy, want),
                (trained, Guidance(beta=0.0), sampled, want_sampled),
                (trained, None, sampled, want_sampled),
            ):
                asked = params.model_copy(update={"guidance": guidance})
                got = await worker.generate(GenerateRequest(prompt=prompt, params=asked))
                assert [c.token_ids for c in got.completions] == [
                    c.token_ids for c in expected.completions
                ]
    finally:
        for worker in (plain, untrained, trained):
            await worker.close()


async def test_token_step_verifier_is_the_trunk_step_verifier() -> None:
    """A worker with a trunk head scores steps with it (votes and search values)."""
    head = random_head(seed=1)
    worker = _worker(head)
    try:
        verifier = worker.token_step_verifier()
        assert isinstance(verifier, TrunkStepVerifier)
        assert verifier.head is head
        verifier.separator = "."  # the character vocabulary has no newline
        scores = await verifier.score_steps("ab", ["cd", "ef"])
    finally:
        await worker.close()
    direct = TrunkStepVerifier(head, worker.model, TOKENIZER, separator=".")
    assert scores == direct.score_steps_now("ab", ["cd", "ef"])
    assert len(set(scores)) == 2


async def test_guidance_is_refused_without_a_verifier() -> None:
    """The scripted test double and a plain worker refuse guidance by the seam's rule."""
    scripted = ScriptedWorker("s", cycle_texts(["x"]))
    assert not scripted.supports_guidance
    worker = _worker(None)
    assert not worker.supports_guidance
    await worker.close()
