"""segment_steps: lines, paragraphs, "Step k" markers, code fences and the final answer."""

from __future__ import annotations

import pytest

from orchestrator.graph import Segmentation, segment_steps


def test_each_non_empty_line_is_a_step_and_the_answer_line_is_final() -> None:
    text = "  First, 6 * 7 = 42.  \n\n\nThen check: 42 / 7 = 6.\n#### 42\n"
    seg = segment_steps(text)
    assert seg == Segmentation(
        steps=("First, 6 * 7 = 42.", "Then check: 42 / 7 = 6."), final="#### 42"
    )
    assert seg.all_steps == ("First, 6 * 7 = 42.", "Then check: 42 / 7 = 6.", "#### 42")


def test_paragraph_mode_keeps_the_lines_of_a_block_together() -> None:
    text = "We need x.\nx = 6 * 7.\n\nSo x = 42.\nDone here.\n\nThe answer is 42."
    assert segment_steps(text, unit="paragraph").steps == (
        "We need x.\nx = 6 * 7.",
        "So x = 42.\nDone here.",
    )
    assert segment_steps(text).steps == ("We need x.", "x = 6 * 7.", "So x = 42.", "Done here.")


def test_step_markers_delimit_steps_and_are_removed() -> None:
    text = (
        "Let's think step by step.\n"
        "**Step 1:** Add the apples.\n3 + 4 = 7\n\n"
        "### Step 2 - Double it\n7 * 2 = 14\n"
        "step 3. Check 14 / 2 = 7\n"
        "Final answer: 14"
    )
    seg = segment_steps(text, unit="paragraph")  # markers win over the unit
    assert seg.steps == (
        "Let's think step by step.",
        "Add the apples.\n3 + 4 = 7",
        "Double it\n7 * 2 = 14",
        "Check 14 / 2 = 7",
    )
    assert seg.final == "Final answer: 14"


def test_the_answer_sentence_is_cut_from_its_line_and_its_marker_dropped() -> None:
    seg = segment_steps("Step 1: 2 + 2 = 4.\nStep 2: Times 3 is 12. So the answer is 12.")
    assert seg.steps == ("2 + 2 = 4.", "Times 3 is 12.")
    assert seg.final == "So the answer is 12."
    assert segment_steps("Step 3: The answer is 5").final == "The answer is 5"


def test_the_last_cue_line_wins_and_chatter_after_it_is_dropped() -> None:
    text = "The answer is maybe 3?\nNo: 2 + 2 = 4.\n\\boxed{4}\nI hope this helps!"
    seg = segment_steps(text)
    assert seg.final == "\\boxed{4}"
    assert seg.steps == ("The answer is maybe 3?", "No: 2 + 2 = 4.")


def test_no_cue_means_no_final_and_empty_text_no_steps() -> None:
    assert segment_steps("a\nb") == Segmentation(steps=("a", "b"), final=None)
    assert segment_steps("") == Segmentation(steps=(), final=None)
    assert segment_steps("The answer is 3.") == Segmentation(steps=(), final="The answer is 3.")


def test_a_fenced_code_block_is_one_step() -> None:
    text = "Write it:\n```python\ndef f(x):\n\n    return x\n```\nIt returns x.\n~~~\nunclosed"
    assert segment_steps(text).steps == (
        "Write it:",
        "```python\ndef f(x):\n\n    return x\n```",
        "It returns x.",
        "~~~\nunclosed",
    )


def test_line_endings_are_normalised() -> None:
    assert segment_steps("a\r\nb\rc").steps == ("a", "b", "c")


def test_an_unknown_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="unit"):
        segment_steps("a", unit="sentence")  # type: ignore[arg-type]
