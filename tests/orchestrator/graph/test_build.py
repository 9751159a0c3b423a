"""ReasoningGraph: merging equivalent steps, stable keys, counts, depths and transitions."""

from __future__ import annotations

import hashlib
import math

import pytest

from orchestrator.extraction import extract_math
from orchestrator.graph import ROOT, ReasoningGraph, normalize_step, segment_steps


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Compute 6 \u00d7 7 = 42.", "compute 6*7=42"),
        ("  So   the TOTAL is 1,200 dollars!", "so the total is 1200 dollars"),
        ("x = 3.50", "X=3.5"),
        ("x = 2.0", "x = 2"),
        ("1. Add $5$ and $3$.", "add 5 and 3"),
        ("**Step 4:** 10 \\div 2 = 5", "10 / 2 = 5"),
        ("\u201cHalf\u201d of 8 is 4; right?", "half of 8 is 4 right"),
        ("8 \u2212 3 = 5", "8-3=5"),
    ],
)
def test_equivalent_spellings_normalise_to_one_text(a: str, b: str) -> None:
    assert normalize_step(a) == normalize_step(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("(2 + 3) * 4", "2 + 3 * 4"),  # brackets are math, not punctuation
        ("x = 3.5", "x = 35"),  # a decimal point between digits stays
        ("x = 12", "x = 1,2"),  # "1,2" is not a thousands group
        ("50% of 10", "50 of 10"),
        ("5 - 3", "5 + 3"),
    ],
)
def test_different_steps_stay_different(a: str, b: str) -> None:
    assert normalize_step(a) != normalize_step(b)


def test_punctuation_only_text_keeps_its_own_spelling() -> None:
    assert normalize_step(" ... ") == "..."
    assert normalize_step("?!") != normalize_step("...")


def test_equivalent_steps_merge_into_one_node_that_keeps_the_first_text() -> None:
    g = ReasoningGraph()
    g.add_path(["Compute 6 \u00d7 7.", "It is 42."], answer="42")
    g.add_path(["compute 6*7", "it is 42"], answer="42")
    g.add_path(["Compute 6 \u00d7 8."], answer="48")
    assert len(g.nodes("step")) == 3
    assert len(g.nodes("answer")) == 2
    key = g.key_of("COMPUTE 6 * 7")
    assert key is not None
    node = g.node(key)
    assert node.text == "Compute 6 \u00d7 7."
    assert (node.visits, node.path_ids) == (2, ("p0", "p1"))
    assert node.answers == {"42": 2}
    assert g.edge(ROOT, key).count == 2


def test_node_keys_are_stable_hashes_of_the_normalised_text() -> None:
    def build() -> ReasoningGraph:
        g = ReasoningGraph()
        g.add_path(["Let x = 2.", "So 2x = 4."], answer="4")
        return g

    first, second = build(), build()
    assert [n.key for n in first.nodes()] == [n.key for n in second.nodes()]
    digest = hashlib.sha1(b"let x=2").hexdigest()[:16]
    assert first.key_of("let x = 2") == f"s:{digest}"
    assert first.answer_key("4") == "a:" + hashlib.sha1(b"4").hexdigest()[:16]
    assert first.nodes()[0].key == ROOT


def test_transition_probabilities_are_counts_over_out_counts() -> None:
    g = ReasoningGraph()
    for steps in (["A", "B", "C"], ["A", "B", "D"], ["A", "B", "C"], ["A", "E"]):
        g.add_path(steps)
    a, b, c, d, e = (g.key_of(t) or "" for t in "ABCDE")
    assert g.out_count(a) == 4
    assert g.transition_prob(a, b) == 0.75
    assert g.transition_prob(a, e) == 0.25
    assert g.transitions(b) == {c: pytest.approx(2 / 3), d: pytest.approx(1 / 3)}
    assert g.transitions(ROOT) == {a: 1.0}
    assert g.transition_prob(b, a) == 0.0  # never observed
    assert g.transitions(c) == {}  # a path end without an answer: no out-edge
    assert g.edge(b, c).count == 2
    assert g.edge(b, c).prob == pytest.approx(2 / 3)
    assert g.edge(b, c).path_ids == ("p0", "p2")
    for node in g.nodes():
        probs = g.transitions(node.key)
        assert not probs or math.isclose(sum(probs.values()), 1.0)
    with pytest.raises(KeyError):
        g.out_count("s:missing")


def test_depth_stats_visits_and_terminal_answers() -> None:
    g = ReasoningGraph()
    g.add_path(["Read.", "Add."], answer="5", correct=True)
    g.add_path(["Read.", "Plan.", "Add."], answer="6", correct=False)
    g.add_path(["Plan.", "Add.", "Add."])  # a repeated step; no answer: no terminal node
    add = g.node(g.key_of("add") or "")
    assert add.visits == 4
    assert add.path_ids == ("p0", "p1", "p2")
    assert (add.depth_min, add.depth_max) == (2, 3)
    assert add.depth_mean == pytest.approx((2 + 3 + 2 + 3) / 4)
    assert add.answers == {"5": 1, "6": 1}
    assert g.edge(add.key, add.key).count == 1  # the repeat is a self-loop
    five = g.node(g.answer_key("5") or "")
    assert (five.kind, five.text, five.depth_min, five.visits) == ("answer", "5", 3, 1)
    root = g.node(ROOT)
    assert (root.kind, root.visits, root.depth_max) == ("root", 3, 0)
    assert root.answers == {"5": 1, "6": 1}
    assert g.paths["p2"].nodes[-1] == add.key
    assert g.paths["p0"].nodes == (ROOT, g.key_of("read"), add.key, five.key)


def test_path_metadata_and_score() -> None:
    g = ReasoningGraph()
    p = g.add_path(["a"], answer=" 7 ", correct=True, tokens=12, path_id="mine")
    q = g.add_path(["a"], answer="7", correct=True, value=0.25)
    r = g.add_path(["a"], correct=False)
    s = g.add_path(["a"])
    assert (p.path_id, p.answer, p.tokens, p.score) == ("mine", "7", 12, 1.0)
    assert (q.path_id, q.score) == ("p1", 0.25)  # value wins over correct
    assert (r.score, s.score) == (0.0, None)
    assert list(g.paths) == ["mine", "p1", "p2", "p3"]
    assert len(g.nodes("answer")) == 1  # " 7 " and "7" are one answer


@pytest.mark.parametrize(
    ("steps", "kwargs"),
    [
        (["ok", "  "], {}),
        (["ok"], {"value": math.nan}),
        (["ok"], {"tokens": -1}),
        (["ok"], {"answer": " "}),
        (["ok"], {"path_id": "p0"}),
    ],
)
def test_bad_paths_are_refused_and_change_nothing(
    steps: list[str], kwargs: dict[str, object]
) -> None:
    g = ReasoningGraph()
    g.add_path(["first"])
    before = g.to_networkx()
    with pytest.raises(ValueError):  # noqa: PT011 - several messages
        g.add_path(steps, **kwargs)  # type: ignore[arg-type]
    assert list(g.paths) == ["p0"]
    assert list(g.to_networkx().nodes(data=True)) == list(before.nodes(data=True))


def test_one_string_is_not_a_path() -> None:
    with pytest.raises(TypeError):
        ReasoningGraph().add_path("Step one")


# --- merging by embedding ----------------------------------------------------------------

TOPICS = {"multiply": [1.0, 0.0, 0.0], "product": [0.98, 0.2, 0.0], "add": [0.0, 1.0, 0.0]}


class FakeEmbedder:
    """Embeds a text by the first topic word it holds; records each call's texts."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            word = next((w for w in TOPICS if w in text.lower()), None)
            out.append(TOPICS[word] if word else [0.0, 0.0, 1.0])
        return out


def test_similar_embeddings_merge_and_the_new_text_becomes_an_alias() -> None:
    embed = FakeEmbedder()
    g = ReasoningGraph(embed=embed, similarity=0.95)
    g.add_path(["Multiply 6 by 7.", "Add 1."])
    g.add_path(["Take the product of 6 and 7.", "Add one more."])  # cos 0.98 and 1.0
    mult = g.key_of("Multiply 6 by 7.")
    assert mult is not None
    assert g.key_of("take the product of 6 and 7") == mult  # now an alias: exact lookup
    node = g.node(mult)
    assert (node.visits, node.text) == (2, "Multiply 6 by 7.")
    assert node.aliases == (normalize_step("Take the product of 6 and 7."),)
    assert len(g.nodes("step")) == 2
    assert embed.calls == [
        ["Multiply 6 by 7.", "Add 1."],
        ["Take the product of 6 and 7.", "Add one more."],
    ]
    g.add_path(["multiply 6 by 7", "Take the product of 6 and 7"])  # both known: no call
    assert len(embed.calls) == 2


def test_below_the_threshold_steps_stay_apart() -> None:
    g = ReasoningGraph(embed=FakeEmbedder(), similarity=0.99)
    g.add_path(["Multiply 6 by 7."])
    g.add_path(["Take the product of 6 and 7."])  # cosine 0.98 < 0.99
    g.add_path(["Something else."])
    assert len(g.nodes("step")) == 3


def test_a_wrong_embedding_shape_is_refused_without_a_change() -> None:
    g = ReasoningGraph(embed=lambda texts: [[1.0, 0.0]], similarity=0.9)
    with pytest.raises(ValueError, match="shape"):
        g.add_path(["a", "b"])
    assert len(g) == 1
    assert not g.paths


def test_similarity_must_be_a_cosine() -> None:
    with pytest.raises(ValueError, match="similarity"):
        ReasoningGraph(similarity=1.5)


def test_segmented_samples_build_a_graph() -> None:
    samples = [
        "Step 1: 6 * 7 = 42.\nStep 2: Check 42 / 7 = 6.\nThe answer is 42.",
        "Step 1: 6*7 = 42\nStep 2: check: 42/7 = 6\n#### 42",
        "Step 1: 6 * 7 = 43.\nThe answer is 43.",
    ]
    g = ReasoningGraph()
    for text in samples:
        seg = segment_steps(text)
        answer = extract_math(seg.final or "").answer
        g.add_path(seg.steps, answer=answer, correct=answer == "42")
    first = g.key_of("6 * 7 = 42")
    assert first is not None
    assert g.transition_prob(ROOT, first) == pytest.approx(2 / 3)
    assert g.node(first).answers == {"42": 2}
    assert sorted(n.text for n in g.nodes("answer")) == ["42", "43"]
