"""Tests for culturesim.kinds.culture.social: bias weights against hand-computed values, sampling, budget."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from culturesim.kinds.culture import social
from culturesim.kinds.culture.schema import SocialSpec
from culturesim.kinds.culture.social import Candidate, bias_weights, choose, fit_budget, jaccard, words

try:
    from scipy.stats import chisquare
except ImportError:  # pragma: no cover - scipy is optional here
    chisquare = None


def cands(*texts: str, agents: list[int] | None = None) -> list[Candidate]:
    agents = agents if agents is not None else list(range(len(texts)))
    return [Candidate(f"idea-{i}", text, agent) for i, (text, agent) in enumerate(zip(texts, agents, strict=True))]


def weights(candidates, spec, degree=None, copies=None) -> np.ndarray:
    return bias_weights(candidates, spec, degree=degree or {}, copies=copies or {})


def pick(candidates, spec, seed, limit=None, degree=None, copies=None) -> list[Candidate]:
    return choose(candidates, spec, np.random.default_rng(seed), limit=limit,
                  degree=degree or {}, copies=copies or {})


# ---------------------------------------------------------------- bias weights

FOUR = cands("one", "two", "three", "four")


def test_no_bias_gives_equal_weights():
    np.testing.assert_array_equal(weights(FOUR, SocialSpec()), np.ones(4))


def test_no_candidates_gives_no_weights():
    for bias in ("none", "content", "prestige", "conformity"):
        assert weights([], SocialSpec(bias=bias)).shape == (0,)


@pytest.mark.parametrize("strength", [0.5, 1.0, 2.0, 3.5])
def test_prestige_by_degree(strength):
    # agent 3 has no entry in the degree table: degree 0
    degree = {0: 0, 1: 3, 2: 7, 9: 100}
    spec = SocialSpec(bias="prestige", prestige="degree", strength=strength)
    expected = np.array([1.0, 4.0, 8.0, 1.0]) ** strength  # (degree + 1) ** strength
    np.testing.assert_allclose(weights(FOUR, spec, degree=degree, copies={1: 50}), expected)


def test_prestige_by_degree_uses_the_holder_not_the_position():
    texts = cands("a", "b", "c", agents=[5, 5, 2])
    spec = SocialSpec(bias="prestige", prestige="degree", strength=2)
    np.testing.assert_allclose(weights(texts, spec, degree={5: 2, 2: 1}), [9.0, 9.0, 4.0])


@pytest.mark.parametrize("strength", [1.0, 2.0])
def test_prestige_by_copying(strength):
    copies = {0: 5, 2: 1, 3: 0}
    spec = SocialSpec(bias="prestige", prestige="copying", strength=strength)
    expected = np.array([6.0, 1.0, 2.0, 1.0]) ** strength  # (copies + 1) ** strength
    np.testing.assert_allclose(weights(FOUR, spec, degree={1: 40}, copies=copies), expected)


@pytest.mark.parametrize("strength", [1.0, 2.0, 0.5])
def test_content_with_keywords(strength):
    texts = cands(
        "A dragon guarded the gold. The DRAGON slept.",  # dragon x2, gold x1
        "A quiet village by the sea.",                 # none
        "Gold, gold everywhere!",                      # gold x2
        "The dragon.",                                 # dragon x1
    )
    spec = SocialSpec(bias="content", content_keywords=["dragon", "Gold"], strength=strength)
    expected = np.array([1 + 3, 1 + 0, 1 + 2, 1 + 1], dtype=float) ** strength
    np.testing.assert_allclose(weights(texts, spec), expected)


@pytest.mark.parametrize("strength", [1.0, 2.0, 3.0])
def test_content_by_length(strength):
    texts = cands("x" * 10, "y" * 20, "z" * 30, "w" * 40)
    spec = SocialSpec(bias="content", strength=strength)
    mean = (10 + 20 + 30 + 40) / 4
    expected = np.array([10 / mean, 20 / mean, 30 / mean, 40 / mean]) ** strength
    np.testing.assert_allclose(weights(texts, spec), expected)


def test_content_by_length_counts_an_empty_text_as_one_character():
    texts = cands("", "abc")
    w = weights(texts, SocialSpec(bias="content", strength=1))
    np.testing.assert_allclose(w, [1 / 2, 3 / 2])  # lengths 1 and 3, mean 2
    assert (w > 0).all()


CONFORMITY_IDEAS = cands(
    "The red fox runs fast",         # A
    "the red fox runs quickly",      # B: J(A,B) = 4/6
    "The red fox runs far!",         # C: J(A,C) = J(B,C) = 4/6
    "A blue whale sings slowly",     # D: shares nothing with A, B, C
)


def test_conformity_supports_on_hand_made_ideas():
    a, b, c, d = (words(x.text) for x in CONFORMITY_IDEAS)
    assert jaccard(a, b) == pytest.approx(4 / 6)
    assert jaccard(a, c) == pytest.approx(4 / 6)
    assert jaccard(b, c) == pytest.approx(4 / 6)
    assert jaccard(a, d) == jaccard(b, d) == jaccard(c, d) == 0.0
    # threshold 0.5: A, B and C each have support 3 (two others plus itself); D only itself
    spec = SocialSpec(bias="conformity", similarity_threshold=0.5, strength=1)
    np.testing.assert_allclose(weights(CONFORMITY_IDEAS, spec), [3, 3, 3, 1])
    spec = SocialSpec(bias="conformity", similarity_threshold=0.5, strength=2)
    np.testing.assert_allclose(weights(CONFORMITY_IDEAS, spec), [9, 9, 9, 1])


def test_conformity_above_every_similarity_counts_only_itself():
    spec = SocialSpec(bias="conformity", similarity_threshold=0.7, strength=2)
    np.testing.assert_allclose(weights(CONFORMITY_IDEAS, spec), [1, 1, 1, 1])


def test_conformity_threshold_is_inclusive():
    ideas = cands("a b c", "a b d", "x y z")  # J = 2/4 = 0.5 exactly between the first two
    spec = SocialSpec(bias="conformity", similarity_threshold=0.5, strength=1)
    np.testing.assert_allclose(weights(ideas, spec), [2, 2, 1])


def test_conformity_counts_identical_copies():
    ideas = cands("same story", "Same story.", "same story", "other tale")
    spec = SocialSpec(bias="conformity", similarity_threshold=1.0, strength=1)
    np.testing.assert_allclose(weights(ideas, spec), [3, 3, 3, 1])


@pytest.mark.parametrize(
    "spec",
    [
        SocialSpec(bias="prestige", prestige="degree", strength=0),
        SocialSpec(bias="prestige", prestige="copying", strength=0),
        SocialSpec(bias="content", content_keywords=["dragon"], strength=0),
        SocialSpec(bias="content", strength=0),
        SocialSpec(bias="conformity", similarity_threshold=0.5, strength=0),
    ],
    ids=["degree", "copying", "keywords", "length", "conformity"],
)
def test_strength_zero_is_unbiased(spec):
    texts = cands("a dragon", "dragon dragon dragon and more words", "the red fox", "the red fox runs")
    w = weights(texts, spec, degree={0: 9, 1: 2}, copies={2: 7})
    np.testing.assert_array_equal(w, np.ones(4))


# ---------------------------------------------------------------- choose

SPECS = [
    SocialSpec(),
    SocialSpec(bias="prestige", prestige="degree", strength=2),
    SocialSpec(bias="prestige", prestige="copying", strength=1),
    SocialSpec(bias="content", strength=2),
    SocialSpec(bias="content", content_keywords=["fox"], strength=1),
    SocialSpec(bias="conformity", similarity_threshold=0.5, strength=3),
]
SPEC_IDS = ["none", "degree", "copying", "length", "keywords", "conformity"]
MANY = cands(*[f"the red fox {'runs ' * i}story {i}" for i in range(8)])
DEGREE = {i: i % 4 for i in range(8)}
COPIES = {i: (7 * i) % 5 for i in range(8)}


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("limit", [None, 0, 1, 3, 8, 20])
def test_choose_returns_at_most_limit_distinct_candidates(spec, limit):
    for seed in range(25):
        chosen = pick(MANY, spec, seed, limit=limit, degree=DEGREE, copies=COPIES)
        expected = len(MANY) if limit is None else min(limit, len(MANY))
        assert len(chosen) == expected  # every weight here is positive
        assert len({c.idea_id for c in chosen}) == len(chosen)
        assert all(c in MANY for c in chosen)


def test_choose_with_no_candidates():
    assert pick([], SocialSpec(bias="prestige"), 0, limit=3) == []
    assert pick([], SocialSpec(), 0, limit=None) == []


def test_choose_never_picks_a_zero_weight_candidate(monkeypatch):
    fixed = np.array([0.0, 1.0, 0.0, 2.0, 3.0, 0.0])
    with np.errstate(divide="ignore"):
        fixed_logs = np.log(fixed)
    monkeypatch.setattr(social, "bias_weights", lambda candidates, spec, **_: fixed_logs.copy())
    six = cands(*"abcdef")
    allowed = {six[i].idea_id for i in np.flatnonzero(fixed)}
    for seed in range(100):
        for limit in (None, 1, 2, 3, 5, 6):
            chosen = pick(six, SocialSpec(bias="prestige"), seed, limit=limit)
            assert {c.idea_id for c in chosen} <= allowed
            assert len(chosen) == min(3 if limit is None else limit, 3)


def test_very_strong_bias_always_picks_the_top_candidate_first():
    degree = {0: 1, 1: 2, 2: 5, 3: 3}  # weights 2**s, 3**s, 6**s, 4**s
    spec = SocialSpec(bias="prestige", prestige="degree", strength=100)
    ranking = [2, 3, 1, 0]
    for seed in range(300):
        chosen = pick(FOUR, spec, seed, limit=None, degree=degree)
        assert chosen[0].agent_id == 2
        assert [c.agent_id for c in chosen] == ranking


def test_very_strong_conformity_shows_the_majority_first():
    spec = SocialSpec(bias="conformity", similarity_threshold=0.5, strength=60)
    for seed in range(200):
        first = pick(CONFORMITY_IDEAS, spec, seed, limit=1)
        assert first[0].text != "A blue whale sings slowly"


def test_overflowing_weights_still_favour_the_top_candidate():
    degree = {0: 10, 1: 1500, 2: 3}
    spec = SocialSpec(bias="prestige", prestige="degree", strength=100)
    three = cands("a", "b", "c")
    with np.errstate(over="ignore"):
        firsts = [pick(three, spec, seed, limit=1, degree=degree)[0].agent_id for seed in range(60)]
    assert firsts == [1] * 60


def test_underflowing_weights_do_not_drop_candidates_when_all_are_shown():
    texts = cands("x", "y" * 100_000, "z" * 100_000)
    spec = SocialSpec(bias="content", strength=100)
    with np.errstate(under="ignore"):
        chosen = pick(texts, spec, 0, limit=None)
    assert len(chosen) == 3


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_choose_is_reproducible_with_seeded_generators(spec):
    for seed in range(10):
        a = [c.idea_id for c in pick(MANY, spec, seed, limit=4, degree=DEGREE, copies=COPIES)]
        b = [c.idea_id for c in pick(MANY, spec, seed, limit=4, degree=DEGREE, copies=COPIES)]
        assert a == b
    # one generator used for a sequence of choices replays the same sequence
    runs = []
    for _ in range(2):
        rng = np.random.default_rng([7, 3])
        runs.append([
            tuple(c.idea_id for c in choose(MANY, spec, rng, limit=3, degree=DEGREE, copies=COPIES))
            for _ in range(20)
        ])
    assert runs[0] == runs[1]


def test_different_seeds_give_different_orders():
    orders = {tuple(c.idea_id for c in pick(MANY, SocialSpec(), seed)) for seed in range(20)}
    assert len(orders) > 10


def _check_frequencies(observed: np.ndarray, expected_p: np.ndarray) -> None:
    n = observed.sum()
    if chisquare is not None:
        _, p_value = chisquare(observed, expected_p * n)
        assert p_value > 1e-3, (observed, expected_p * n, p_value)
    else:  # pragma: no cover
        sd = np.sqrt(n * expected_p * (1 - expected_p))
        assert (np.abs(observed - expected_p * n) < 4 * sd).all(), (observed, expected_p * n)


def test_first_and_second_pick_follow_the_normalised_weights():
    # prestige by degree, strength 1: weights 1, 2, 3, 4
    degree = {0: 0, 1: 1, 2: 2, 3: 3}
    spec = SocialSpec(bias="prestige", prestige="degree", strength=1)
    w = weights(FOUR, spec, degree=degree)
    np.testing.assert_allclose(w, [1, 2, 3, 4])
    p = w / w.sum()

    rng = np.random.default_rng(20240601)
    draws = 2000
    first, second = Counter(), Counter()
    for _ in range(draws):
        a, b = choose(FOUR, spec, rng, limit=2, degree=degree, copies={})
        first[a.agent_id] += 1
        second[b.agent_id] += 1
    observed_first = np.array([first[i] for i in range(4)])
    _check_frequencies(observed_first, p)

    # without replacement: P(second = j) = sum over i != j of p_i * w_j / (W - w_i)
    total = w.sum()
    p_second = np.array([sum(p[i] * w[j] / (total - w[i]) for i in range(4) if i != j) for j in range(4)])
    assert p_second.sum() == pytest.approx(1.0)
    _check_frequencies(np.array([second[i] for i in range(4)]), p_second)


def test_first_pick_is_uniform_without_bias():
    rng = np.random.default_rng(99)
    counts = Counter(choose(FOUR, SocialSpec(), rng, limit=1, degree={}, copies={})[0].agent_id
                     for _ in range(2000))
    _check_frequencies(np.array([counts[i] for i in range(4)]), np.full(4, 0.25))


# ---------------------------------------------------------------- fit_budget


def test_fit_budget_keeps_everything_that_fits_in_order():
    texts = ["aaa", "bb", "c"]
    assert fit_budget(texts, 10) == texts
    assert fit_budget(texts, 6) == texts  # exactly at the budget


def test_fit_budget_stops_at_the_first_text_that_does_not_fit():
    assert fit_budget(["aaaa", "bbbb", "cccc"], 9) == ["aaaa", "bbbb"]
    # a later short text does not jump the queue: the order is the bias's ranking
    assert fit_budget(["aaaa", "bbbbbbbb", "c"], 9) == ["aaaa"]


def test_fit_budget_truncates_a_first_text_that_is_too_long():
    long = "word " * 100
    kept = fit_budget([long, "short"], 50)
    assert len(kept) == 1
    assert kept[0].endswith("…")
    assert len(kept[0]) <= 50
    assert kept[0][:-1] == long[: len(kept[0]) - 1]


def test_fit_budget_empty_input():
    assert fit_budget([], 100) == []


@pytest.mark.parametrize("max_chars", [50, 51, 120, 1000])
def test_fit_budget_properties_on_random_inputs(max_chars):
    rng = np.random.default_rng(max_chars)
    for _ in range(200):
        n = int(rng.integers(1, 8))
        texts = ["x" * int(rng.integers(0, 2 * max_chars)) for _ in range(n)]
        kept = fit_budget(texts, max_chars)
        assert kept, "never empty for non-empty input"
        assert sum(len(t) for t in kept) <= max_chars
        assert len(kept) <= len(texts)
        if len(texts[0]) <= max_chars:
            assert kept == texts[: len(kept)]  # an in-order prefix, untouched
            rest = texts[len(kept):]
            if rest:  # it stopped because the next text would not fit
                assert sum(len(t) for t in kept) + len(rest[0]) > max_chars
        else:
            assert kept == [texts[0][: max_chars - 1] + "…"]


# ---------------------------------------------------------------- words and jaccard


def test_words_lowercases_and_drops_punctuation():
    assert words("The fox, the FOX! Über-fox.") == frozenset({"the", "fox", "über"})
    assert words("") == frozenset()


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ({"a", "b", "c"}, {"b", "c", "d"}, 2 / 4),
        ({"a", "b"}, {"a", "b"}, 1.0),
        ({"a"}, {"b"}, 0.0),
        ({"a", "b", "c", "d"}, {"a"}, 1 / 4),
        (set(), {"a"}, 0.0),
        (set(), set(), 1.0),
    ],
)
def test_jaccard_on_hand_made_sets(a, b, expected):
    assert jaccard(frozenset(a), frozenset(b)) == pytest.approx(expected)
    assert jaccard(frozenset(b), frozenset(a)) == pytest.approx(expected)
