#!/usr/bin/python3
"""Writes tests/fixtures/similarity/cka-reference.json: test vectors and numpy reference values for stage 1
(linear CKA, unbiased linear CKA, RBF CKA with the bandwidth as a fraction of the median distance, biased and
unbiased HSIC, mutual k-NN). Run once with Debian's numpy (apt-get install -y python3-numpy):

    /usr/bin/python3 scripts/make-cka-reference.py

The C# tests read the JSON and need no Python. Formulas are written out from their definitions (Gram matrices,
H K H centring, Song et al. 2012 unbiased HSIC), independently of the C# code paths.
"""
import json, os
import numpy as np

rng = np.random.default_rng(20251201)


def f32(a):
    return a.astype(np.float32).astype(np.float64)  # the values the C# side reads (float32)


def hsic_biased(k, l):
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return np.sum((h @ k @ h) * (h @ l @ h))


def hsic_unbiased(k, l):
    n = k.shape[0]
    kt = k - np.diag(np.diag(k))
    lt = l - np.diag(np.diag(l))
    one = np.ones(n)
    term = np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (one @ kt @ lt @ one)
    return term / (n * (n - 3))


def cka(k, l, unbiased):
    h = hsic_unbiased if unbiased else hsic_biased
    return h(k, l) / np.sqrt(h(k, k) * h(l, l))


def sq_dists(x):
    diff = x[:, None, :] - x[None, :, :]
    return np.sum(diff * diff, axis=2)


def rbf_gram(x, fraction):
    d2 = sq_dists(x)
    iu = np.triu_indices(x.shape[0], 1)
    upper = d2[iu]
    median = np.median(upper[upper > 1e-12])  # sigma = fraction * sqrt(median non-zero squared distance)
    sigma2 = median * fraction * fraction
    return np.exp(-d2 / (2 * sigma2))


def mutual_knn(x, y, k):
    def nbrs(m):
        u = m / np.linalg.norm(m, axis=1, keepdims=True)
        s = u @ u.T
        np.fill_diagonal(s, -np.inf)
        return [set(np.argsort(-row, kind="stable")[:k]) for row in s]
    nx, ny = nbrs(x), nbrs(y)
    return float(np.mean([len(a & b) / k for a, b in zip(nx, ny)]))


cases = []
for name, n, dx, dy, mix in [("correlated", 40, 6, 5, 0.8), ("weak", 60, 9, 4, 0.25), ("wide", 24, 30, 12, 0.6)]:
    x = f32(rng.standard_normal((n, dx)))
    y = rng.standard_normal((n, dy))
    y[:, : min(dx, dy)] += mix * x[:, : min(dx, dy)] * 2.0
    y = f32(y)
    case = {"name": name, "n": n, "x": x.ravel().tolist(), "x_cols": dx, "y": y.ravel().tolist(), "y_cols": dy}
    case["linear_cka"] = cka(x @ x.T, y @ y.T, False)
    case["linear_cka_unbiased"] = cka(x @ x.T, y @ y.T, True)
    for frac in (0.5, 1.0, 2.0):
        kx, ly = rbf_gram(x, frac), rbf_gram(y, frac)
        case[f"rbf_cka_{frac}"] = cka(kx, ly, False)
        case[f"rbf_cka_unbiased_{frac}"] = cka(kx, ly, True)
    case["mutual_knn_5"] = mutual_knn(x, y, 5)
    cases.append(case)

out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "similarity", "cka-reference.json")
with open(out, "w") as f:
    json.dump({"generator": "scripts/make-cka-reference.py", "numpy": np.__version__, "cases": cases}, f, indent=1)
print("wrote", os.path.normpath(out), [(c["name"], round(c["linear_cka"], 4)) for c in cases])
