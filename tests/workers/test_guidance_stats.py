"""Guidance counters (``workers.guidance_stats``) and how the seam reports them."""

from __future__ import annotations

from workers.guidance_stats import GuidanceStats
from workers.pool import WorkerPool
from workers.scripted import ScriptedWorker, cycle_texts


class GuidedWorker(ScriptedWorker):
    """Test double: a scripted worker reporting fixed guidance stats."""

    def __init__(self, stats: GuidanceStats | None) -> None:
        super().__init__("m", cycle_texts(["x"]), guidance=stats is not None)
        self.stats = stats

    @property
    def guidance_stats(self) -> GuidanceStats | None:
        return self.stats


def test_a_step_counts_guided_and_skipped_rows() -> None:
    """Rows with candidates are verified, rows without (|V_t| = 1) skipped."""
    stats = GuidanceStats()
    stats.count_step([[1, 2, 3], [], [4]])
    assert stats == GuidanceStats(verified_rows=2, skipped_rows=1, scored_candidates=4)


def test_counting_rows_by_number_is_counting_them_by_candidates() -> None:
    by_candidates, by_number = GuidanceStats(), GuidanceStats()
    by_candidates.count_step([[1, 2, 3], [], [4]])
    by_number.count_rows(scored=2, skipped=1, candidates=4)
    assert by_number == by_candidates


def test_totals_sum_every_counter() -> None:
    parts = [GuidanceStats(1, 2, 3, 0.5), GuidanceStats(10, 20, 30, 1.5)]
    assert GuidanceStats.total(parts) == GuidanceStats(11, 22, 33, 2.0)
    assert GuidanceStats.total([]) == GuidanceStats()


def test_the_seam_reports_none_without_a_verifier_and_a_pool_sums_its_replicas() -> None:
    """A worker without a verifier has no stats; a pool sums the replicas that keep them."""
    assert ScriptedWorker("m", cycle_texts(["x"])).guidance_stats is None
    a, b = GuidanceStats(1, 0, 2, 0.25), GuidanceStats(3, 1, 4, 0.5)
    pool = WorkerPool("m", [GuidedWorker(a), GuidedWorker(None), GuidedWorker(b)])
    assert pool.guidance_stats == GuidanceStats(4, 1, 6, 0.75)
    assert WorkerPool("m", [GuidedWorker(None)]).guidance_stats is None
