"""Step 4 of the latent pipeline: continuous thoughts by CODI-style self-distillation
(arXiv 2502.21074), kept small.

Teacher: the text-CoT fine-tune (``finetune``'s ``text`` arm), frozen, reading prompt,
chain of thought and answer. Student: a copy of it with the two latent delimiters added
(``extend_vocabulary(..., 0)``) and CODI's ``ThoughtProjection``, reading the prompt, then
``<|start_latent|>``, k continuous thoughts (each step's input is the projection of the
previous step's last hidden state, exactly as ``workers.latent.run_thoughts`` runs them
when served), ``<|end_latent|>`` and the answer. Its loss, per batch:

    cross-entropy on the answer tokens
    + ``distill_weight`` * mean over layers of smooth-L1(h_student / s, sg(h_teacher) / s)

where both hidden states are taken at the same answer position: the last token of ``The
answer is`` (its state predicts the number; ``encoding.ChainTokens.cue``), and s is the
teacher's standard deviation of that layer over the batch (CODI normalises the same way).
Unlike CODI, the teacher is frozen and not trained on its own CoT loss jointly, and there
is no curriculum. The student trains in the same mode as the fine-tunes
(``training.TrainSettings``) plus the projection, and is saved as an ordinary checkpoint
whose ``latent_vocabulary.json`` names the projection, so the transformers worker runs its
thoughts when a request asks for ``continuous_thoughts``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import structlog
import torch
import torch.nn.functional as F

from system2.pipelines.latent.encoding import ChainTokens
from system2.pipelines.latent.finetune import load_model
from system2.pipelines.latent.steps import StepMarker, finished_step, read_step, write_step
from system2.pipelines.latent.training import (
    StepHook,
    TrainSettings,
    run_training,
    trainable_parameters,
)
from workers.latent import LatentVocabulary, ThoughtProjection, extend_vocabulary, save_latent_model

__all__ = ["PROJECTION_FILE", "CodiLoss", "codi_loss", "run_codi_step", "teacher_states"]

log = structlog.get_logger(__name__)

PROJECTION_FILE = "thought_projection.safetensors"
STEP = "codi"


class CodiLoss(NamedTuple):
    total: torch.Tensor
    answer: torch.Tensor  # cross-entropy on the answer tokens
    distill: torch.Tensor  # the normalised smooth-L1 between aligned hidden states


@torch.no_grad()
def teacher_states(teacher: Any, chains: Sequence[ChainTokens], pad_id: int) -> torch.Tensor:
    """The teacher's hidden states (every layer after the embeddings) at each chain's
    aligned position: [rows, layers, hidden]."""
    rows = [c.prompt_ids + c.cot_ids + c.answer_ids for c in chains]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    output = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    at = torch.tensor([len(c.prompt_ids) + len(c.cot_ids) + c.cue for c in chains])
    layers = torch.stack(output.hidden_states[1:], dim=1)  # [rows, layers, width, hidden]
    return layers[torch.arange(len(rows)), :, at]


def codi_loss(
    student: Any,
    projection: ThoughtProjection,
    vocabulary: LatentVocabulary,
    chains: Sequence[ChainTokens],
    targets: torch.Tensor,
    *,
    thoughts: int,
    pad_id: int,
    distill_weight: float = 1.0,
) -> CodiLoss:
    """The student's loss on a batch (see the module docstring); ``targets`` are the
    teacher's aligned states (``teacher_states``)."""
    rows = len(chains)
    prompts = [(*c.prompt_ids, vocabulary.start_id) for c in chains]
    width = max(map(len, prompts))
    ids = torch.full((rows, width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, prompt in enumerate(prompts):  # left-padded, as the worker's prefill
        ids[i, width - len(prompt) :] = torch.tensor(prompt)
        mask[i, width - len(prompt) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    output = student(
        input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
        output_hidden_states=True,
    )  # fmt: skip
    cache, hidden = output.past_key_values, output.hidden_states[-1][:, -1]
    next_position = positions[:, -1] + 1
    embed_dtype = student.get_input_embeddings().weight.dtype
    for _ in range(thoughts):
        mask = torch.cat([mask, torch.ones(rows, 1, dtype=mask.dtype)], dim=-1)
        output = student(
            inputs_embeds=projection(hidden).to(embed_dtype).unsqueeze(1),
            attention_mask=mask, position_ids=next_position.unsqueeze(-1),
            past_key_values=cache, use_cache=True, output_hidden_states=True,
        )  # fmt: skip
        cache, hidden = output.past_key_values, output.hidden_states[-1][:, -1]
        next_position = next_position + 1
    tails = [(vocabulary.end_id, *c.answer_ids) for c in chains]
    length = max(map(len, tails))
    tail = torch.full((rows, length), pad_id, dtype=torch.long)
    tail_mask = torch.zeros_like(tail)
    labels = torch.full_like(tail, -100)
    for i, row in enumerate(tails):  # right-padded: padding after a row changes nothing in it
        tail[i, : len(row)] = torch.tensor(row)
        tail_mask[i, : len(row)] = 1
        labels[i, : len(row) - 1] = torch.tensor(row[1:])
    output = student(
        input_ids=tail, attention_mask=torch.cat([mask, tail_mask], dim=-1),
        position_ids=next_position.unsqueeze(-1) + torch.arange(length), past_key_values=cache,
        use_cache=True, output_hidden_states=True,
    )  # fmt: skip
    logits = output.logits
    answer = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1))
    at = torch.tensor([1 + c.cue for c in chains])
    states = torch.stack(output.hidden_states[1:], dim=1)[torch.arange(rows), :, at]
    scale = targets.float().std(dim=(0, 2), keepdim=True).clamp(min=1e-6)
    distill = F.smooth_l1_loss(states.float() / scale, targets.float() / scale)
    return CodiLoss(answer + distill_weight * distill, answer, distill)


def run_codi_step(
    chains: Sequence[ChainTokens],
    *,
    teacher_dir: Path | str,
    out: Path | str,
    settings: TrainSettings,
    thoughts: int,
    distill_weight: float,
    upstream: Mapping[str, Any],
    threads: int,
    force: bool = False,
    on_step: StepHook | None = None,
) -> StepMarker:
    """Distil the teacher into a continuous-thought student saved to ``out`` (skipped when
    finished under the same config)."""
    if thoughts < 1:
        raise ValueError(f"thoughts must be >= 1, got {thoughts}")
    teacher_marker = read_step(teacher_dir)
    if teacher_marker is None or teacher_marker.step != "finetune-text":
        raise ValueError(f"{teacher_dir}: the text-CoT fine-tune has not finished (its teacher)")
    config = {
        "teacher": str(teacher_dir),
        "teacher_config": teacher_marker.config,
        "thoughts": thoughts,
        "distill_weight": distill_weight,
        "training": asdict(settings),
        **upstream,
    }
    done = finished_step(out, STEP, config, force=force)
    if done is not None:
        log.info("latent.codi.skipped", out=str(out))
        return done
    started = time.perf_counter()
    teacher, tokenizer = load_model(teacher_dir)
    teacher.eval().requires_grad_(False)
    student, _ = load_model(teacher_dir)
    vocabulary = extend_vocabulary(student, tokenizer, 0, seed=settings.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        projection = ThoughtProjection(student.config.hidden_size)
    decayed, undecayed = trainable_parameters(student, settings, new_rows_from=vocabulary.first_id)
    parameters = ([*decayed, *projection.parameters()], undecayed)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    parts: dict[str, list[float]] = {"answer": [], "distill": []}
    student.train()
    projection.train()

    def loss_of(batch: Sequence[ChainTokens]) -> torch.Tensor:
        targets = teacher_states(teacher, batch, pad)
        loss = codi_loss(
            student, projection, vocabulary, batch, targets, thoughts=thoughts, pad_id=pad,
            distill_weight=distill_weight,
        )  # fmt: skip
        parts["answer"].append(float(loss.answer.detach()))
        parts["distill"].append(float(loss.distill.detach()))
        return loss.total

    log.info("latent.codi.start", examples=len(chains), thoughts=thoughts)
    trained = run_training(parameters, chains, settings, loss_of, on_step=on_step)
    student.eval()
    path = Path(out)
    projection.eval().save(path / PROJECTION_FILE)
    vocabulary = vocabulary.model_copy(update={"thought_projection": PROJECTION_FILE})
    save_latent_model(student, tokenizer, vocabulary, path)
    tail = max(1, len(parts["answer"]) // 10)
    results = {
        "examples": len(chains),
        "epochs": settings.epochs,
        "steps": trained.steps,
        "thoughts": thoughts,
        "final_loss": trained.final_loss,
        "final_answer_loss": sum(parts["answer"][-tail:]) / tail,
        "final_distill_loss": sum(parts["distill"][-tail:]) / tail,
        "first_loss": trained.losses[0],
    }
    marker = write_step(
        path, STEP, config, results, seconds=time.perf_counter() - started, threads=threads
    )
    log.info("latent.codi.done", out=str(out), **results)
    return marker
