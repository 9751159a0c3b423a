"""The token-verifier logits-processor adapters for vLLM, on synthetic tensors (no engine).

Both adapters are driven the way vLLM drives them (V1: ``BatchUpdate``s then ``apply``;
V2: ``add_request`` then ``apply`` with a ``LogitsContext``) with a deterministic scorer,
and must give exactly what the pure functions in ``workers.verifier.scoring`` give.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("vllm")

from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality
from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext

from workers.guidance_stats import GuidanceStats
from workers.verifier.guidance import guide_rows
from workers.verifier.scoring import guided_logits, plausible_candidates
from workers.vllm.processors import (
    CONFIG_KEY,
    GuidanceSettings,
    VerifierProcessorV1,
    VerifierProcessorV2,
    guidance_extra_args,
    parse_guidance,
    read_guidance_stats,
    scorer_from_config,
)

VOCAB = 40


class RecordingScorer:
    """Deterministic scores s(seq, v) = ((7 v + len(seq)) mod 5) - 2; remembers its calls."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[int, ...]]] = []

    def __call__(
        self, sequences: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]]
    ) -> torch.Tensor:
        self.calls.append([tuple(s) for s in sequences])
        width = max((len(c) for c in candidates), default=0)
        out = torch.zeros((len(sequences), width))
        for i, (seq, cands) in enumerate(zip(sequences, candidates, strict=True)):
            for j, v in enumerate(cands):
                out[i, j] = float((7 * v + len(seq)) % 5 - 2)
        return out


def make_scorer(vllm_config: Any) -> RecordingScorer:
    """The factory named in the fake engine config (``module:factory``)."""
    return RecordingScorer()


def fake_config() -> Any:
    return SimpleNamespace(additional_config={CONFIG_KEY: {"scorer": f"{__name__}:make_scorer"}})


def expected_row(
    logits: torch.Tensor, sequence: Sequence[int], settings: GuidanceSettings
) -> torch.Tensor:
    """One row guided by hand with the pure functions."""
    found = plausible_candidates(logits.unsqueeze(0), settings.alpha, settings.top_k)
    ids = found.row(0)
    scores = torch.zeros(found.ids.shape)
    if len(ids) > 1:
        scores[0, : len(ids)] = RecordingScorer()([sequence], [ids])[0]
    return guided_logits(logits.unsqueeze(0), found.ids, scores, settings.beta, found.valid)[0]


def random_logits(rows: int, seed: int = 0) -> torch.Tensor:
    return torch.randn((rows, VOCAB), generator=torch.Generator().manual_seed(seed)) * 3


def test_guide_rows_is_the_pure_functions_row_by_row() -> None:
    """Rows with different settings are each guided exactly as the pure functions say."""
    logits = random_logits(3)
    sequences = [[1, 2], [3], [4, 5, 6]]
    settings = [
        GuidanceSettings(beta=1.0, alpha=0.05, top_k=6),
        GuidanceSettings(beta=2.5, alpha=0.2, top_k=0),
        GuidanceSettings(beta=1.0, alpha=0.05, top_k=6),
    ]
    out = guide_rows(logits, sequences, settings, RecordingScorer())
    for i in range(3):
        torch.testing.assert_close(out[i], expected_row(logits[i], sequences[i], settings[i]))
    assert torch.equal(logits, random_logits(3)), "the input logits must stay untouched"


def test_guide_rows_leaves_beta_zero_rows_alone() -> None:
    """A beta = 0 row comes back bit-identical (no V_t truncation) and is never scored."""
    logits = random_logits(2, seed=1)
    scorer = RecordingScorer()
    out = guide_rows(
        logits, [[1], [2]], [GuidanceSettings(beta=0.0), GuidanceSettings(beta=1.0)], scorer
    )
    assert torch.equal(out[0], logits[0])
    assert not torch.equal(out[1], logits[1])
    assert scorer.calls == [[(2,)]]


def test_parse_guidance_reads_and_checks_extra_args() -> None:
    """Absent or beta = 0 means no guidance; malformed settings are refused."""
    assert parse_guidance(None) is None
    assert parse_guidance({"other": 1}) is None
    assert parse_guidance(guidance_extra_args(0.0)) is None
    assert parse_guidance(guidance_extra_args(0.5, 0.2, 4)) == GuidanceSettings(0.5, 0.2, 4)
    for bad in (
        {"system2_beta": -1.0},
        {"system2_beta": "x"},
        {"system2_beta": 1.0, "system2_alpha": 1.5},
        {"system2_beta": 1.0, "system2_top_k": -2},
        {"system2_beta": 1.0, "system2_alpha": 0.0, "system2_top_k": 0},
    ):
        with pytest.raises(ValueError, match="system2"):
            parse_guidance(bad)


def test_scorer_from_config_needs_a_description() -> None:
    """An engine started with the processor but without its config fails at start."""
    with pytest.raises(ValueError, match=CONFIG_KEY):
        scorer_from_config(SimpleNamespace(additional_config={}), torch.device("cpu"))  # type: ignore[arg-type]


# -- V1 runner --------------------------------------------------------------------------


def guided_params(beta: float = 1.0) -> SamplingParams:
    return SamplingParams(extra_args=guidance_extra_args(beta, 0.05, 6))


def test_v1_adapter_follows_batch_updates() -> None:
    """Added rows are guided with prompt + their live output list; moves and removals are
    followed; unguided rows are untouched."""
    processor = VerifierProcessorV1(fake_config(), torch.device("cpu"), False)
    assert processor.is_argmax_invariant() is False
    outputs: list[list[int]] = [[], [], []]
    processor.update_state(
        BatchUpdate(
            batch_size=3,
            removed=[],
            added=[
                (0, guided_params(), [1, 2], outputs[0]),
                (1, SamplingParams(), [3], outputs[1]),
                (2, guided_params(2.0), [4, 5], outputs[2]),
            ],
            moved=[],
        )
    )
    outputs[0].append(9)  # vLLM appends sampled tokens to the very lists it handed over
    logits = random_logits(3, seed=2)
    original = logits.clone()
    out = processor.apply(logits)
    settings_0 = GuidanceSettings(1.0, 0.05, 6)
    torch.testing.assert_close(out[0], expected_row(original[0], [1, 2, 9], settings_0))
    assert torch.equal(out[1], original[1])
    torch.testing.assert_close(
        out[2], expected_row(original[2], [4, 5], GuidanceSettings(2.0, 0.05, 6))
    )
    scorer = processor.scorer
    assert isinstance(scorer, RecordingScorer)
    assert scorer.calls[-1] == [(1, 2, 9), (4, 5)]

    # Row 1 leaves; rows 0 and 2 swap places.
    processor.update_state(
        BatchUpdate(batch_size=2, removed=[1], added=[], moved=[(0, 2, MoveDirectionality.SWAP)])
    )
    assert processor.update_state(None) is None  # no change: nothing to do
    logits = random_logits(3, seed=3)
    original = logits.clone()
    out = processor.apply(logits)
    assert scorer.calls[-1] == [(4, 5), (1, 2, 9)]
    torch.testing.assert_close(
        out[0], expected_row(original[0], [4, 5], GuidanceSettings(2.0, 0.05, 6))
    )
    assert torch.equal(out[1], original[1])


def test_v1_adapter_writes_its_stats_file_after_each_guided_step(tmp_path: Path) -> None:
    """The engine process's counts reach the caller through the stats file."""
    stats_file = tmp_path / "stats.json"
    assert read_guidance_stats(stats_file) == GuidanceStats()  # before the first step
    config = fake_config()
    config.additional_config[CONFIG_KEY]["stats_file"] = str(stats_file)
    processor = VerifierProcessorV1(config, torch.device("cpu"), False)
    processor.update_state(
        BatchUpdate(
            batch_size=2,
            removed=[],
            added=[(0, guided_params(), [1, 2], []), (1, SamplingParams(), [3], [])],
            moved=[],
        )
    )
    logits = random_logits(2, seed=4)
    candidates = len(plausible_candidates(logits[:1].clone(), 0.05, 6).row(0))
    processor.apply(logits)
    processor.apply(random_logits(2, seed=5))
    stats = read_guidance_stats(stats_file)
    assert stats.verified_rows + stats.skipped_rows == 2  # row 0, twice; row 1 is unguided
    assert stats.scored_candidates >= (candidates if candidates > 1 else 0)
    assert stats.seconds > 0
    assert stats == processor.keeper.stats


def test_v1_adapter_without_guided_rows_returns_logits_as_they_are() -> None:
    processor = VerifierProcessorV1(fake_config(), torch.device("cpu"), False)
    processor.update_state(
        BatchUpdate(batch_size=1, removed=[], added=[(0, SamplingParams(), [1], [])], moved=[])
    )
    logits = random_logits(1)
    assert processor.apply(logits) is logits
    assert processor.rows == {}


def test_adapters_validate_request_settings() -> None:
    """Bad per-request settings are refused at admission, by either adapter."""
    bad = SamplingParams(extra_args={"system2_beta": 1.0, "system2_alpha": 3.0})
    for adapter in (VerifierProcessorV1, VerifierProcessorV2):
        with pytest.raises(ValueError, match="system2_alpha"):
            adapter.validate_params(bad)
        adapter.validate_params(guided_params())


# -- Model Runner V2 --------------------------------------------------------------------


def v2_context(slots: list[int], positions: list[int], inputs: list[int]) -> LogitsContext:
    n = len(slots)
    mapping = torch.tensor(slots, dtype=torch.int32)
    return LogitsContext(
        expanded_idx_mapping=mapping,
        idx_mapping=mapping,
        idx_mapping_np=np.array(slots, dtype=np.int32),
        expanded_local_pos=torch.zeros(n, dtype=torch.int32),
        input_ids=torch.tensor(inputs, dtype=torch.int32),
        pos=torch.tensor(positions, dtype=torch.int64),
        seq_lens_upper_bound_np=np.array([p + 1 for p in positions], dtype=np.int32),
    )


def test_v2_adapter_reads_slots_and_token_history() -> None:
    """Rows map to slots; a row's sequence is its slot's tokens before its position plus its
    input token; slots declined by ``add_request`` (or re-used unguided) are untouched."""
    history = torch.zeros((4, 16), dtype=torch.int32)
    history[0, :4] = torch.tensor([11, 12, 13, 14])
    history[2, :3] = torch.tensor([21, 22, 23])
    req_states = SimpleNamespace(
        device=torch.device("cpu"), all_token_ids=SimpleNamespace(gpu=history)
    )
    processor = VerifierProcessorV2(fake_config(), req_states)  # type: ignore[arg-type]
    assert processor.add_request(0, guided_params()) is True
    assert processor.add_request(1, SamplingParams()) is False
    assert processor.add_request(2, guided_params(2.0)) is True

    # Batch order differs from slot order: row 0 is slot 2, row 1 slot 1, row 2 slot 0.
    logits = random_logits(3, seed=4)
    original = logits.clone()
    out = processor.apply(logits, v2_context([2, 1, 0], [2, 5, 3], [23, 7, 14]))
    scorer = processor.scorer
    assert isinstance(scorer, RecordingScorer)
    assert scorer.calls[-1] == [(21, 22, 23), (11, 12, 13, 14)]
    torch.testing.assert_close(
        out[0], expected_row(original[0], [21, 22, 23], GuidanceSettings(2.0, 0.05, 6))
    )
    assert torch.equal(out[1], original[1])
    torch.testing.assert_close(
        out[2], expected_row(original[2], [11, 12, 13, 14], GuidanceSettings(1.0, 0.05, 6))
    )

    # Slot 0 is recycled for an unguided request: its old settings must not leak.
    assert processor.add_request(0, SamplingParams()) is False
    logits = random_logits(1, seed=5)
    original = logits.clone()
    out = processor.apply(logits, v2_context([0], [3], [14]))
    assert torch.equal(out, original)
