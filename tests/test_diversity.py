"""Tests for analysis.diversity: every metric against a value computed another way.

Closed forms (identical, orthogonal, two-cluster populations), independent
libraries (scipy pdist/entropy, numpy's n x n eigendecomposition, gzip), and
identities between metrics. Self-pairs must never be counted, so the references
here are built from pairs i<j (pdist) or with the diagonal removed.
"""

import gzip
import math
import time
import tracemalloc

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist, squareform
from scipy.stats import entropy as scipy_entropy

from analysis import diversity as dv
from analysis.diversity import (
    ClusterResult,
    Resampled,
    centroid_distance,
    clusters,
    compression_ratio,
    distinct_n,
    homogenization,
    mean_pairwise_distance,
    median_pairwise_distance,
    resample,
    vendi_score,
)

VECTOR_METRICS = [mean_pairwise_distance, median_pairwise_distance, centroid_distance, homogenization, vendi_score]
PAIRWISE = [mean_pairwise_distance, median_pairwise_distance, homogenization]


def rand(n, d, seed=0, offset=0.0):
    """Gaussian vectors, optionally pushed toward a common direction so distances are not all ~1."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:, 0] += offset
    return X


def kernel_vendi(X):
    """Reference Vendi: eigenvalues of the full n x n cosine kernel over n, straight from numpy."""
    K = 1.0 - squareform(pdist(X, "cosine"))  # squareform puts 0 on the diagonal -> K_ii = 1
    lam = np.linalg.eigvalsh(K / len(X))
    lam = lam[lam > 1e-12]
    return math.exp(-np.sum(lam * np.log(lam)))


def two_clusters(a, b, d=2):
    X = np.zeros((a + b, d))
    X[:a, 0] = 1.0
    X[a:, 1] = 1.0
    return X


# ---------------------------------------------------------------- closed forms


@pytest.mark.parametrize("n", [2, 5, 40])
def test_identical_vectors(n):
    X = np.tile([0.3, -1.2, 4.0], (n, 1))
    assert mean_pairwise_distance(X) == pytest.approx(0.0, abs=1e-12)
    assert median_pairwise_distance(X) == pytest.approx(0.0, abs=1e-12)
    assert centroid_distance(X) == pytest.approx(0.0, abs=1e-12)
    assert homogenization(X) == pytest.approx(1.0, abs=1e-12)
    assert vendi_score(X) == pytest.approx(1.0, abs=1e-12)
    result = clusters(X)
    assert result.count == 1 and result.entropy == 0.0
    assert (result.labels == 0).all()


@pytest.mark.parametrize("k,d", [(2, 2), (3, 3), (5, 8), (7, 7), (4, 50)])
def test_orthogonal_vectors(k, d):
    X = np.eye(d)[:k] * np.arange(1, k + 1)[:, None]  # scale must not matter
    assert mean_pairwise_distance(X) == pytest.approx(1.0, abs=1e-12)
    assert median_pairwise_distance(X) == pytest.approx(1.0, abs=1e-12)
    assert homogenization(X) == pytest.approx(0.0, abs=1e-12)
    assert vendi_score(X) == pytest.approx(k, rel=1e-12)
    assert centroid_distance(X) == pytest.approx(1 - 1 / math.sqrt(k), abs=1e-12)


def test_orthogonal_rotated_still_k():
    """Orthogonality, not alignment with the axes, is what counts."""
    Q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(6, 6)))
    assert vendi_score(Q[:4]) == pytest.approx(4.0, rel=1e-10)
    assert mean_pairwise_distance(Q[:4]) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("a,b", [(1, 1), (3, 7), (10, 2), (25, 75)])
def test_two_orthogonal_clusters_vendi_is_exp_entropy(a, b):
    p, q = a / (a + b), b / (a + b)
    expected = math.exp(-(p * math.log(p) + q * math.log(q)))
    # d=2 < n uses the d x d path (except a=b=1); padding to d >= n uses the n x n path
    assert vendi_score(two_clusters(a, b)) == pytest.approx(expected, rel=1e-12)
    assert vendi_score(two_clusters(a, b, d=a + b + 1)) == pytest.approx(expected, rel=1e-12)
    result = clusters(two_clusters(a, b))
    assert result.count == 2
    assert result.entropy == pytest.approx(-(p * math.log(p) + q * math.log(q)), rel=1e-12)


def test_antipodal_pair():
    X = np.array([[2.0, 0.0], [-5.0, 0.0]])
    assert mean_pairwise_distance(X) == pytest.approx(2.0)
    assert median_pairwise_distance(X) == pytest.approx(2.0)
    assert homogenization(X) == pytest.approx(-1.0)
    assert centroid_distance(X) == pytest.approx(1.0)  # centroid vanishes: limit value, not NaN
    assert vendi_score(X) == pytest.approx(kernel_vendi(X))


# ------------------------------------------------------ independent libraries


@pytest.mark.parametrize("n,d,offset,seed", [(2, 3, 0.0, 0), (7, 3, 1.0, 1), (60, 5, 2.0, 2), (33, 100, 0.5, 3)])
def test_pairwise_against_scipy_pdist(n, d, offset, seed):
    X = rand(n, d, seed, offset)
    ref = pdist(X, "cosine")  # unordered pairs i<j only
    assert len(ref) == n * (n - 1) // 2
    assert mean_pairwise_distance(X) == pytest.approx(ref.mean(), rel=1e-12, abs=1e-14)
    assert median_pairwise_distance(X) == pytest.approx(np.median(ref), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("block", [1, 2, 7, 64, 10_000])
def test_mean_pairwise_block_size_irrelevant(block):
    X = rand(50, 6, 4, 1.0)
    assert mean_pairwise_distance(X, block=block) == pytest.approx(pdist(X, "cosine").mean(), rel=1e-12)


def test_exact_median_over_several_blocks_against_pdist():
    X = rand(1500, 8, 5, 1.0)  # 1500 rows -> several row blocks of the exact path
    assert median_pairwise_distance(X) == pytest.approx(np.median(pdist(X, "cosine")), rel=1e-12)


def test_exact_median_with_tiny_blocks(monkeypatch):
    monkeypatch.setattr(dv, "_BLOCK_ELEMS", 37)
    X = rand(41, 4, 6, 0.8)
    assert median_pairwise_distance(X) == pytest.approx(np.median(pdist(X, "cosine")), rel=1e-12)


def test_sampled_median_close_to_exact():
    X = rand(1500, 8, 7, 1.0)
    exact = median_pairwise_distance(X)
    sampled = median_pairwise_distance(X, max_pairs=200_000, rng=np.random.default_rng(0))
    assert sampled == pytest.approx(exact, abs=5e-3)
    again = median_pairwise_distance(X, max_pairs=200_000, rng=np.random.default_rng(0))
    assert sampled == again


def test_sampled_median_needs_rng():
    X = rand(100, 3)
    with pytest.raises(ValueError, match="rng is required"):
        median_pairwise_distance(X, max_pairs=10)


def test_sampled_median_never_pairs_an_item_with_itself():
    # 3 orthogonal vectors: every distinct pair is at distance 1, a self-pair at 0.
    # Sampling 2 of the 3 pairs, any self-pair would pull the median below 1.
    X = np.eye(3) * [1.0, 2.0, 3.0]
    for seed in range(50):
        assert median_pairwise_distance(X, max_pairs=2, rng=np.random.default_rng(seed)) == pytest.approx(1.0)


def test_centroid_distance_against_cdist():
    X = rand(80, 6, 8, 1.5)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    c = unit.mean(axis=0, keepdims=True)
    assert centroid_distance(X) == pytest.approx(cdist(unit, c, "cosine").mean(), rel=1e-12)


def test_homogenization_against_kernel_without_diagonal():
    X = rand(40, 5, 9, 1.0)
    K = 1.0 - squareform(pdist(X, "cosine"))
    np.fill_diagonal(K, np.nan)
    assert homogenization(X) == pytest.approx(np.nanmean(np.nanmean(K, axis=1)), rel=1e-12)


@pytest.mark.parametrize("n,d", [(50, 5), (200, 3), (10, 30), (20, 20), (1, 4), (3, 1)])
def test_vendi_against_n_by_n_eigendecomposition(n, d):
    X = rand(n, d, seed=n + d, offset=1.0)
    assert vendi_score(X) == pytest.approx(kernel_vendi(X), rel=1e-10)


def test_vendi_both_paths_agree():
    X = rand(30, 30, 10, 0.7)  # d == n: n x n path
    Xd = X[:, :29]  # d < n: d x d path
    assert vendi_score(Xd) == pytest.approx(kernel_vendi(Xd), rel=1e-10)
    assert vendi_score(X) == pytest.approx(kernel_vendi(X), rel=1e-10)


def test_distinct_n_hand_count():
    texts = ["The cat sat.", "the CAT ran!"]
    # tokens: the cat sat | the cat ran
    assert distinct_n(texts, n=1) == pytest.approx(4 / 6)  # the, cat, sat, ran of 6
    assert distinct_n(texts, n=2) == pytest.approx(3 / 4)  # (the cat) x2, (cat sat), (cat ran)
    assert distinct_n(texts, n=3) == pytest.approx(2 / 2)
    assert distinct_n(["a b", "a b"], n=2) == pytest.approx(1 / 2)  # no (b, a) across texts
    assert distinct_n(["one", "two words"], n=2) == 1.0  # short text adds no bigram


def test_distinct_n_without_ngrams_is_an_error():
    with pytest.raises(ValueError, match="no text has 3 or more words"):
        distinct_n(["a b", "c", "!!!"], n=3)


@pytest.mark.parametrize(
    "texts",
    [
        ["hello world"],
        ["the same idea"] * 50,
        ["ideas differ: " + str(i) * i for i in range(30)],
        ["café naïve — ünïcode ✓", "日本語のテキスト"],
    ],
)
def test_compression_ratio_against_gzip(texts):
    raw = "\n".join(texts).encode("utf-8")
    expected = len(gzip.compress(raw, compresslevel=9, mtime=0)) / len(raw)
    assert compression_ratio(texts) == expected
    assert compression_ratio(list(texts)) == compression_ratio(texts)  # deterministic


def test_compression_ratio_lower_is_more_repetitive():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(500)]
    varied = [" ".join(rng.choice(words, 12)) for _ in range(60)]
    repetitive = ["we should plant more trees in the city"] * 60
    assert compression_ratio(repetitive) < compression_ratio(varied)


def test_cluster_entropy_against_scipy():
    X = np.vstack([rand(20, 4, 1) * 0.05 + np.eye(4)[i] for i in range(3)] + [rand(5, 4, 2) * 0.05 + np.eye(4)[3]])
    result = clusters(X)
    assert isinstance(result, ClusterResult)
    counts = np.bincount(result.labels)
    assert result.count == len(counts)
    assert result.entropy == pytest.approx(scipy_entropy(counts), rel=1e-12)


def three_groups(per=40, d=6, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(3), per)
    X = np.eye(d)[truth] + noise * rng.normal(size=(3 * per, d))
    return X, truth


def same_partition(a, b):
    pairs = {(int(x), int(y)) for x, y in zip(a, b, strict=True)}
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("linkage", ["average", "complete", "single"])
def test_three_separated_groups_give_three_clusters(linkage):
    X, truth = three_groups()
    result = clusters(X, linkage=linkage)
    assert result.count == 3
    assert same_partition(result.labels, truth)
    assert result.entropy == pytest.approx(math.log(3))


def test_cluster_labels_numbered_by_first_appearance():
    X, truth = three_groups()
    order = np.random.default_rng(1).permutation(len(X))
    labels = clusters(X[order]).labels
    _, first = np.unique(labels, return_index=True)
    assert list(labels[np.sort(first)]) == [0, 1, 2]


def test_sampled_clustering_assigns_rest_to_nearest_centroid():
    X, truth = three_groups(per=100)
    result = clusters(X, sample_size=60, rng=np.random.default_rng(0))
    assert result.count == 3
    assert len(result.labels) == len(X)
    assert same_partition(result.labels, truth)
    assert result.entropy == pytest.approx(scipy_entropy(np.bincount(result.labels)))
    again = clusters(X, sample_size=60, rng=np.random.default_rng(0))
    assert np.array_equal(result.labels, again.labels)


def test_sampled_clustering_needs_rng():
    X, _ = three_groups(per=10)
    with pytest.raises(ValueError, match="rng is required"):
        clusters(X, sample_size=20)


def test_clusters_rejects_ward_and_bad_threshold():
    X, _ = three_groups(per=5)
    with pytest.raises(ValueError, match="linkage"):
        clusters(X, linkage="ward")
    with pytest.raises(ValueError, match="distance_threshold"):
        clusters(X, distance_threshold=0)


# -------------------------------------------------------- invariances, identities


def test_scale_invariance():
    X = rand(45, 7, 11, 1.0)
    scales = np.random.default_rng(12).choice([1e-150, 1e-3, 1.0, 7.0, 1e150], size=len(X))[:, None]
    Y = X * scales
    for metric in VECTOR_METRICS:
        assert metric(Y) == pytest.approx(metric(X), rel=1e-12, abs=1e-14), metric.__name__
    assert np.array_equal(clusters(Y).labels, clusters(X).labels)


def test_float32_and_lists_accepted():
    X = rand(10, 3, 13, 1.0)
    assert mean_pairwise_distance(X.astype(np.float32)) == pytest.approx(mean_pairwise_distance(X), rel=1e-6)
    assert mean_pairwise_distance(X.tolist()) == mean_pairwise_distance(X)


@pytest.mark.parametrize("n,d,seed", [(2, 2, 0), (10, 4, 1), (100, 16, 2), (12, 40, 3)])
def test_homogenization_identity(n, d, seed):
    X = rand(n, d, seed, offset=0.7)
    assert homogenization(X) == pytest.approx(1.0 - mean_pairwise_distance(X), abs=1e-12)


def test_centroid_and_pairwise_identity():
    """mean cos over i<j = (n ||c||^2 - 1) / (n - 1): links the centroid to the pairwise mean."""
    X = rand(70, 5, 14, 1.0)
    n = len(X)
    c = 1.0 - centroid_distance(X)
    assert 1.0 - mean_pairwise_distance(X) == pytest.approx((n * c**2 - 1) / (n - 1), abs=1e-12)


FIXTURES = {
    "random": rand(30, 5, 15),
    "offset": rand(30, 5, 16, 3.0),
    "duplicates": np.tile([1.0, 2.0, 3.0], (6, 1)),
    "orthogonal": np.eye(4),
    "antipodal": np.array([[1.0, 1.0], [-1.0, -1.0], [2.0, 2.0], [-3.0, -3.0]]),
    "wide": rand(3, 200, 17),
    "huge_and_tiny": np.array([[1e300, 1e300], [1e-300, -1e-300], [3.0, 0.0]]),
    "one_dim": np.array([[1.0], [-2.0], [3.0]]),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_no_nan_anywhere(name):
    X = FIXTURES[name]
    for metric in VECTOR_METRICS:
        assert math.isfinite(metric(X)), metric.__name__
    result = clusters(X)
    assert math.isfinite(result.entropy) and result.count >= 1
    out = resample(mean_pairwise_distance, X, m=2, r=5, rng=np.random.default_rng(0))
    assert math.isfinite(out.mean) and math.isfinite(out.std) and np.isfinite(out.values).all()


def test_huge_values_do_not_overflow():
    X = np.array([[1e300, 1e300], [1e300, 0.0]])
    assert mean_pairwise_distance(X) == pytest.approx(1 - 1 / math.sqrt(2))


# ------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("metric", VECTOR_METRICS + [lambda X: clusters(X)])
@pytest.mark.parametrize("empty", [np.empty((0, 3)), [], np.empty((4, 0))])
def test_empty_vectors_rejected(metric, empty):
    with pytest.raises(ValueError, match="empty|dimension 0|2-D"):
        metric(empty)


@pytest.mark.parametrize("metric", [distinct_n, compression_ratio])
def test_empty_texts_rejected(metric):
    with pytest.raises(ValueError, match="empty"):
        metric([])


def test_empty_strings_rejected_by_compression():
    with pytest.raises(ValueError, match="empty"):
        compression_ratio([""])


@pytest.mark.parametrize("metric", [distinct_n, compression_ratio])
def test_single_string_is_not_a_list_of_texts(metric):
    with pytest.raises(TypeError, match="single string"):
        metric("the cat sat on the mat")


@pytest.mark.parametrize("metric", PAIRWISE)
def test_single_vector_needs_two(metric):
    with pytest.raises(ValueError, match="needs at least 2"):
        metric(np.array([[1.0, 2.0]]))


def test_single_item_defined_values():
    x = np.array([[1.0, 2.0, 3.0]])
    assert centroid_distance(x) == 0.0
    assert vendi_score(x) == 1.0
    result = clusters(x)
    assert result.count == 1 and result.entropy == 0.0 and list(result.labels) == [0]
    assert distinct_n(["only one text here"]) == 1.0
    assert compression_ratio(["only one text here"]) > 0


@pytest.mark.parametrize("metric", VECTOR_METRICS + [lambda X: clusters(X)])
def test_zero_row_rejected(metric):
    X = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="zero rows 1"):
        metric(X)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_rejected(bad):
    X = np.array([[1.0, 0.0], [bad, 1.0]])
    for metric in VECTOR_METRICS:
        with pytest.raises(ValueError, match="non-finite"):
            metric(X)


def test_one_dimensional_array_rejected():
    with pytest.raises(ValueError, match="2-D"):
        mean_pairwise_distance(np.array([1.0, 2.0, 3.0]))


# ------------------------------------------------------------------- resampling


def test_resample_reproducible_with_same_seed():
    X = rand(100, 5, 18, 1.0)
    a = resample(mean_pairwise_distance, X, m=20, r=15, rng=np.random.default_rng(42))
    b = resample(mean_pairwise_distance, X, m=20, r=15, rng=np.random.default_rng(42))
    c = resample(mean_pairwise_distance, X, m=20, r=15, rng=np.random.default_rng(43))
    assert isinstance(a, Resampled)
    assert np.array_equal(a.values, b.values) and a.mean == b.mean and a.std == b.std
    assert not np.array_equal(a.values, c.values)
    assert a.mean == pytest.approx(a.values.mean()) and a.std == pytest.approx(np.std(a.values, ddof=1))


@pytest.mark.parametrize("metric", VECTOR_METRICS)
def test_resample_with_m_equal_n_is_the_metric(metric):
    X = rand(25, 4, 19, 1.0)
    out = resample(metric, X, m=len(X), r=4, rng=np.random.default_rng(0))
    assert out.mean == pytest.approx(metric(X), rel=1e-12, abs=1e-14)
    assert out.std == pytest.approx(0.0, abs=1e-12)


def test_resample_texts():
    texts = [f"idea number {i} about trees" for i in range(30)]
    out = resample(distinct_n, texts, m=30, r=3, rng=np.random.default_rng(0))
    assert out.mean == pytest.approx(distinct_n(texts))
    out = resample(compression_ratio, texts, m=10, r=5, rng=np.random.default_rng(0))
    assert len(out.values) == 5 and np.isfinite(out.values).all()


def test_resample_subsets_are_without_replacement():
    X = np.eye(10)  # any repeated row would make a pair at distance 0
    out = resample(mean_pairwise_distance, X, m=10, r=5, rng=np.random.default_rng(1))
    assert np.allclose(out.values, 1.0)


def test_resample_too_few_items():
    with pytest.raises(ValueError, match="fewer than m=11"):
        resample(mean_pairwise_distance, rand(10, 3), m=11, r=3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="empty"):
        resample(distinct_n, [], m=1, r=3, rng=np.random.default_rng(0))


def test_resample_argument_errors():
    X = rand(10, 3)
    with pytest.raises(ValueError, match="rng is required"):
        resample(mean_pairwise_distance, X, m=5, r=3, rng=None)
    with pytest.raises(ValueError, match="r must be at least 2"):
        resample(mean_pairwise_distance, X, m=5, r=1, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="must return a number"):
        resample(clusters, X, m=5, r=3, rng=np.random.default_rng(0))
    out = resample(lambda S: clusters(S).count, X, m=5, r=3, rng=np.random.default_rng(0))
    assert (out.values >= 1).all()


# ------------------------------------------------------------------------ large n


def test_large_n_mean_pairwise_is_fast_and_matches_sampled_pairs():
    n, d = 20_000, 32
    X = rand(n, d, 20, offset=1.0)
    start = time.perf_counter()
    value = mean_pairwise_distance(X)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0

    rng = np.random.default_rng(21)
    i = rng.integers(0, n, 400_000)
    j = rng.integers(0, n - 1, 400_000)
    j += j >= i
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    sampled = 1.0 - np.einsum("ij,ij->i", unit[i], unit[j])
    assert value == pytest.approx(sampled.mean(), abs=5 * sampled.std() / math.sqrt(len(sampled)))


def test_large_n_builds_no_n_by_n_matrix():
    n, d = 20_000, 32
    X = rand(n, d, 22, offset=1.0)
    tracemalloc.start()
    try:
        mean_pairwise_distance(X)
        centroid_distance(X)
        homogenization(X)
        vendi_score(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * X.nbytes  # an n x n float64 matrix would be 3.2 GB; X is 5 MB
