"""Agreement of one set of sentence embeddings with the FP32 reference's, text for text.

- cosine_mean, cosine_p5, cosine_min: the cosine of each text's embedding with the reference's
  embedding of the same text (the mean, the 5th percentile, the worst text).
- topk_overlap: every text as a query over the others, ranked by cosine similarity; the share of
  its top-k neighbours (k = 10, or one fewer than the texts where there are fewer) that are also
  among the reference's top-k, averaged over the queries.
- agreement: the share of queries whose nearest neighbour is the reference's.
- similarity_spearman: Spearman's rank correlation of the cosine similarity of every pair of texts
  with the reference's similarity of the same pairs.
Spearman is computed here (average ranks for ties, then Pearson of the ranks), as scipy does.
"""
import numpy as np

TOP_K = 10


def unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def ranks(x) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    out = np.empty(len(x))
    out[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return out


def spearman(a, b) -> float | None:
    """Spearman's rho of two equal-length sequences; None where either is constant or shorter than 2."""
    if len(a) < 2:
        return None
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den else None


def pair_cosines(emb, pairs) -> np.ndarray:
    """Cosine similarity of each (i, j) pair of rows of emb."""
    u = unit(emb)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return np.einsum("ij,ij->i", u[pairs[:, 0]], u[pairs[:, 1]])


def similarities(emb) -> np.ndarray:
    """(n, n) cosine similarity of every pair of rows."""
    u = unit(emb)
    return u @ u.T


def neighbours(sims, k) -> np.ndarray:
    """(n, k) indices of each row's k most similar other rows, most similar first."""
    sims = sims.copy()
    np.fill_diagonal(sims, -np.inf)  # a text is not its own neighbour
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def against_reference(ref, cand, k=TOP_K) -> dict:
    """The figures of the module docstring for cand's embeddings against ref's (same texts, same order)."""
    ref, cand = np.asarray(ref, dtype=np.float64), np.asarray(cand, dtype=np.float64)
    if ref.shape != cand.shape or ref.ndim != 2:
        raise ValueError(f"embedding shapes differ: {ref.shape} vs {cand.shape}")
    if not np.isfinite(cand).all():
        raise ValueError("the embeddings hold NaN or Inf")
    cos = np.clip(np.einsum("ij,ij->i", unit(ref), unit(cand)), -1.0, 1.0)
    out = {"cosine_mean": float(cos.mean()), "cosine_p5": float(np.percentile(cos, 5)),
           "cosine_min": float(cos.min()), "topk_overlap": None, "agreement": None, "similarity_spearman": None}
    n = len(ref)
    k = min(k, n - 1)
    if k >= 1:
        sa, sb = similarities(ref), similarities(cand)
        a, b = neighbours(sa, k), neighbours(sb, k)
        out["topk_overlap"] = float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)]))
        out["agreement"] = float((a[:, 0] == b[:, 0]).mean())
        upper = np.triu_indices(n, 1)
        out["similarity_spearman"] = spearman(sa[upper], sb[upper])
    return out
