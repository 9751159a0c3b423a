"""``check_humaneval``: real HumanEval problems pass only on a proof from the checker."""

from __future__ import annotations

from system2.evaluation import load_dataset
from system2.evaluation.sandbox import check_humaneval
from system2.evaluation.sandbox.child import decode, encode


def test_canonical_solutions_pass_as_body_and_as_whole_function() -> None:
    """The canonical solution passes, as a function body and as a full function."""
    for item in load_dataset("humaneval", limit=3, seed=0):
        meta = item.metadata
        body = check_humaneval(
            meta["prompt"], meta["canonical_solution"], item.gold, meta["entry_point"]
        )
        assert body.status == "passed", body.stderr_tail
        full = meta["prompt"] + meta["canonical_solution"]
        whole = check_humaneval(meta["prompt"], full, item.gold, meta["entry_point"])
        assert whole.status == "passed", whole.stderr_tail


def test_wrong_solution_fails_with_the_assertion() -> None:
    """A wrong completion fails, and the reason is the failed assertion."""
    item = load_dataset("humaneval", limit=1, seed=0)[0]
    meta = item.metadata
    result = check_humaneval(meta["prompt"], "    return False\n", item.gold, meta["entry_point"])
    assert result.status == "failed"
    assert result.reason == "AssertionError"


def test_tests_that_call_the_entry_point_by_name_see_the_candidate() -> None:
    """A test calling the function by its own name (as HumanEval/33 does) reaches the
    candidate, not the prompt's empty stub."""
    prompt = 'def twice(x):\n    """Double x."""\n'
    test = "def check(candidate):\n    assert candidate(2) == twice(2) == 4\n"
    assert check_humaneval(prompt, "    return 2 * x\n", test, "twice").passed


def test_values_keep_their_types_across_the_sandbox() -> None:
    """Arguments and results cross as plain data with their types kept."""
    value = [1, 2.5, float("inf"), "s", (1, None), {3, 4}, frozenset({5}), {"k": [True]}, b"\x00"]
    assert decode(encode(value)) == value
    assert type(decode(encode((1,)))) is tuple


def test_candidate_exceptions_reach_the_tests_as_their_builtin_type() -> None:
    """A ValueError raised by the candidate is a ValueError in the tests."""
    prompt = 'def parse(s):\n    """Parse."""\n'
    test = (
        "def check(candidate):\n"
        "    try:\n        candidate('x')\n    except ValueError:\n        return\n"
        "    raise AssertionError('no ValueError')\n"
    )
    assert check_humaneval(prompt, "    return int(s)\n", test, "parse").passed
