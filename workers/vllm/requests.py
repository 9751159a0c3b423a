"""The vLLM ``SamplingParams`` of a ``VLLMWorker``'s engine requests.

``generate_params``: one ``n=1`` engine request per sample, sample i seeded with ``seed + i``
(vLLM's own ``n > 1`` does not promise that seeding; greedy requests get no seed), with
the sampled tokens' log-probs (``logprobs=0``), the request's stop strings, and, for a
request with guidance, the verifier's beta/alpha/top_k in ``extra_args`` for the engine's
logits processor. ``sampling_params``: any request, which returns its final output only,
or (``streamed``) every output cumulatively: each one holds the text, token ids and
log-probs so far, the last one exactly what a final-only request returns.
``generate_result``: the call's ``GenerateResult`` from its samples' completions, with its
usage (the prompt counts once per sample).
"""

from __future__ import annotations

import time
from typing import Any

from workers.base import Completion, GenerateRequest, GenerateResult, WorkerUsage
from workers.errors import UnsupportedRequest
from workers.latent.serving import LatentModel, refuse_thoughts

__all__ = ["generate_params", "generate_result", "sampling_params"]


def sampling_params(*, streamed: bool = False, **kwargs: Any) -> Any:
    """``vllm.SamplingParams(**kwargs)``, its outputs final-only or (``streamed``) cumulative."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    kind = RequestOutputKind.CUMULATIVE if streamed else RequestOutputKind.FINAL_ONLY
    return SamplingParams(output_kind=kind, **kwargs)


def generate_params(
    model_name: str, request: GenerateRequest, *, guided: bool, streamed: bool
) -> list[Any]:
    """The ``n`` engine requests' parameters of ``request`` (``guided``: whether the engine
    runs a token verifier; a request for guidance is refused without one)."""
    p = request.params
    refuse_thoughts(model_name, p, "vLLM")
    extra_args = None
    if p.guidance is not None:
        if not guided:
            raise UnsupportedRequest(
                model_name,
                "the request asks for verifier guidance but this engine was started "
                "without a token verifier (set `verifier: {path: DIR}` in its vllm config)",
            )
        from workers.vllm.processors import guidance_extra_args  # imports vllm

        g = p.guidance
        extra_args = guidance_extra_args(g.beta, g.alpha, g.top_k)
    return [
        sampling_params(
            streamed=streamed,
            n=1,
            temperature=p.temperature,
            top_p=p.top_p,
            top_k=p.top_k,
            max_tokens=p.max_tokens,
            stop=list(p.stop) or None,
            seed=None if p.seed is None or p.greedy else p.seed + i,
            logprobs=0,
            extra_args=extra_args,
        )
        for i in range(p.n)
    ]


def generate_result(
    model_name: str,
    prompt_ids: tuple[int, ...],
    completions: tuple[Completion, ...],
    started: float,
    latent: LatentModel | None = None,
) -> GenerateResult:
    """The call's result; ``started``: when it began (``time.perf_counter``); ``latent``:
    the served model's latent part, whose ids usage counts apart (``latent_tokens``)."""
    usage = WorkerUsage(
        prompt_tokens=len(prompt_ids) * len(completions),
        **(latent or LatentModel()).usage(completions, 0),
        seconds=time.perf_counter() - started,
    )
    return GenerateResult(model=model_name, completions=completions, usage=usage)
