"""Each objective equals a direct loop over its formula, ignores sample order, and has finite gradients."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from cl_core import objectives as L

TOL = 1e-5


def rand(m: int, n: int = 5, d: int = 7, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(m)]


def unit(es):
    return [[(row / math.sqrt(float(sum(x * x for x in row.tolist())))).tolist() for row in e] for e in es]


def dot(u, v):
    return sum(a * b for a, b in zip(u, v, strict=True))


def lse(values):
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


# ---- loop references, written from the formulas in the docstrings ---------------------------------


def ref_info_nce(es, s):
    z = unit(es)
    n, out = len(z[0]), []
    for a, b in itertools.combinations(range(len(z)), 2):
        ab = sum(-(s * dot(z[a][i], z[b][i]) - lse([s * dot(z[a][i], z[b][j]) for j in range(n)])) for i in range(n))
        ba = sum(-(s * dot(z[b][i], z[a][i]) - lse([s * dot(z[b][i], z[a][j]) for j in range(n)])) for i in range(n))
        out.append(0.5 * (ab + ba) / n)
    return sum(out) / len(out)


def ref_siglip(es, t, b):
    z = unit(es)
    n, out = len(z[0]), []
    for p, q in itertools.combinations(range(len(z)), 2):
        total = 0.0
        for i in range(n):
            for j in range(n):
                y = 1.0 if i == j else -1.0
                total += -math.log(1 / (1 + math.exp(-y * (t * dot(z[p][i], z[q][j]) + b))))
        out.append(total / n)
    return sum(out) / len(out)


def ref_dcl(es, s):
    z = unit(es)
    n, out = len(z[0]), []
    for a, b in itertools.combinations(range(len(z)), 2):
        for x, y in ((z[a], z[b]), (z[b], z[a])):
            terms = []
            for i in range(n):
                neg = [s * dot(x[i], v[j]) for v in (x, y) for j in range(n) if j != i]
                terms.append(-s * dot(x[i], y[i]) + lse(neg))
            out.append(sum(terms) / n)
    return sum(out) / len(out)


def ref_mv_infonce(es, s):
    z = unit(es)
    v, n = len(z), len(z[0])
    total = 0.0
    for i in range(n):
        pos = [s * dot(z[a][i], z[b][i]) for a in range(v) for b in range(v) if a != b]
        neg = [s * dot(z[a][i], z[b][j]) for a in range(v) for b in range(v) for j in range(n) if (b, j) != (a, i)]
        total += lse(neg) - lse(pos)
    return total / n


def ref_mv_dhel(es, s):
    z = unit(es)
    v, n = len(z), len(z[0])
    total = 0.0
    for i in range(n):
        pos = [s * dot(z[a][i], z[b][i]) for a in range(v) for b in range(a + 1, v)]
        neg = sum(lse([s * dot(z[a][i], z[a][j]) for j in range(n) if j != i]) for a in range(v))
        total += neg - lse(pos)
    return total / n


def ref_symile_n_squared(es, s):
    z = unit(es)
    m, n = len(z), len(z[0])
    total = 0.0
    for anchor in range(m):
        rest = [z[k] for k in range(m) if k != anchor]
        for i in range(n):
            cands = [s * sum(z[anchor][i][d] * math.prod(r[j][d] for r, j in zip(rest, combo, strict=True))
                             for d in range(len(z[0][0])))
                     for combo in itertools.product(range(n), repeat=m - 1)]
            positive = s * sum(z[anchor][i][d] * math.prod(r[i][d] for r in rest) for d in range(len(z[0][0])))
            total += lse(cands) - positive
    return total / (m * n)


def ref_gram(es, s):
    z = unit(es)
    n = len(z[0])

    def volume(vectors):
        g = torch.tensor([[dot(u, v) for v in vectors] for u in vectors], dtype=torch.float64)
        return math.sqrt(max(float(torch.linalg.det(g)), 1e-8))

    vol = [[volume([z[0][i]] + [z[k][j] for k in range(1, len(z))]) for j in range(n)] for i in range(n)]
    rows = sum(s * vol[i][i] + lse([-s * vol[i][j] for j in range(n)]) for i in range(n)) / n
    cols = sum(s * vol[j][j] + lse([-s * vol[i][j] for i in range(n)]) for j in range(n)) / n
    return 0.5 * (rows + cols)


def ref_alignment(es, alpha):
    z = unit(es)
    vals = [sum(math.dist(z[a][i], z[b][i]) ** alpha for i in range(len(z[0]))) / len(z[0])
            for a, b in itertools.combinations(range(len(z)), 2)]
    return sum(vals) / len(vals)


def ref_uniformity(es, t):
    z = unit(es)
    vals = []
    for x in z:
        pairs = [math.exp(-t * math.dist(x[i], x[j]) ** 2) for i in range(len(x)) for j in range(i + 1, len(x))]
        vals.append(math.log(sum(pairs) / len(pairs)))
    return sum(vals) / len(vals)


CASES = [
    ("info_nce", lambda e: L.info_nce(e, logit_scale=3.0), lambda e: ref_info_nce(e, 3.0), (2, 3)),
    ("siglip", lambda e: L.siglip(e, logit_scale=4.0, logit_bias=-2.0), lambda e: ref_siglip(e, 4.0, -2.0), (2, 3)),
    ("dcl", lambda e: L.dcl(e, logit_scale=2.5), lambda e: ref_dcl(e, 2.5), (2, 3)),
    ("mv_infonce", lambda e: L.mv_infonce(e, logit_scale=2.0), lambda e: ref_mv_infonce(e, 2.0), (2, 4)),
    ("mv_dhel", lambda e: L.mv_dhel(e, logit_scale=2.0), lambda e: ref_mv_dhel(e, 2.0), (2, 4)),
    ("symile", lambda e: L.symile(e, logit_scale=3.0), lambda e: ref_symile_n_squared(e, 3.0), (3, 4)),
    ("gram", lambda e: L.gram(e, logit_scale=2.0), lambda e: ref_gram(e, 2.0), (2, 3)),
    ("alignment", lambda e: L.alignment(e), lambda e: ref_alignment(e, 2.0), (2, 3)),
    ("uniformity", lambda e: L.uniformity(e), lambda e: ref_uniformity(e, 2.0), (1, 2)),
]


@pytest.mark.parametrize("name, fn, ref, modalities", CASES, ids=[c[0] for c in CASES])
def test_equals_loop_reference(name, fn, ref, modalities):
    for m in modalities:
        es = rand(m, n=4 if name == "symile" and m == 4 else 5, seed=m)
        assert float(fn(es)) == pytest.approx(ref(es), abs=TOL, rel=TOL), (name, m)


@pytest.mark.parametrize("name, fn, ref, modalities", CASES, ids=[c[0] for c in CASES])
def test_invariant_to_consistent_permutation(name, fn, ref, modalities):
    es = rand(max(modalities[0], 3 if name == "symile" else 2), n=6, seed=11)
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(3))
    assert float(fn([e[perm] for e in es])) == pytest.approx(float(fn(es)), abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name, fn, ref, modalities", CASES, ids=[c[0] for c in CASES])
def test_finite_gradients(name, fn, ref, modalities, dtype):
    es = [e.to(dtype).requires_grad_(True) for e in rand(max(modalities[0], 3 if name == "symile" else 2), n=8)]
    loss = fn(es)
    loss.backward()
    assert torch.isfinite(loss)
    for e in es:
        assert e.grad is not None and e.grad.dtype == dtype and torch.isfinite(e.grad.float()).all()


def test_gram_gradient_finite_at_perfect_alignment():
    x = torch.randn(4, 6, requires_grad=True)
    loss = L.gram([x, x.detach().clone(), x.detach().clone()])
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_symile_linear_negatives_are_reproducible_and_bounded():
    es = rand(3, n=6, seed=5)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a = L.symile(es, negatives="n", generator=g1)
    b = L.symile(es, negatives="n", generator=g2)
    assert float(a) == float(b)
    assert 0 < float(a) < float(L.symile(es, negatives="n_squared")) + 5


def test_symile_needs_three_modalities_and_shapes_must_match():
    with pytest.raises(ValueError, match="at least 3"):
        L.symile(rand(2))
    with pytest.raises(ValueError, match="same N and D"):
        L.info_nce([torch.randn(4, 3), torch.randn(5, 3)])


def test_aligned_pairs_score_lower_than_random():
    """Sanity of direction: the cosine-based objectives prefer matched pairs. (Symile scores with the
    multilinear inner product, which identical vectors do not maximise: Σ x_d³ may even be negative.)"""
    base = rand(1, n=8, d=16, seed=2)[0]
    aligned = [base, base + 0.01 * torch.randn_like(base), base + 0.01 * torch.randn_like(base)]
    shuffled = [base, base[torch.roll(torch.arange(8), 1)], base[torch.roll(torch.arange(8), 3)]]
    for name, fn in L.OBJECTIVES.items():
        if name != "symile":
            assert float(fn(aligned)) < float(fn(shuffled)), name


def test_gram_with_a_picture_anchor_is_solved_without_the_text():
    """Two picture modalities made anti-parallel per sample and a text that carries nothing: anchored on a
    picture the GRAM loss is nearly solved; anchored on the text (the paper's choice) it stays at chance."""
    g = torch.Generator().manual_seed(0)
    image = torch.randn(16, 8, generator=g)
    mif = -image
    text = torch.randn(1, 8, generator=g).expand(16, 8)
    chance = math.log(16)
    assert float(L.gram([image, mif, text], logit_scale=50.0, anchor=0)) < 0.1 * chance
    assert float(L.gram([image, mif, text], logit_scale=50.0, anchor=2)) > 0.5 * chance
