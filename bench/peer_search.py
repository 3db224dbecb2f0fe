#!/usr/bin/env python3
"""Peers of `mlnet-align bench --suites search` on the same vectors: hnswlib (HNSW, same M / ef_construction / ef) for
ANN build rate, recall and query speed, FAISS IndexFlatIP for exact search.

Usage: peer_search.py CONFIG.json   (written by the C# side; prints one JSON line)
  config: {"mode": "build" | "query", "dir": folder, "n": rows, "dim": d, "queries": q, "threads": T,
           "m": 16, "ef_construction": 128, "ef": 512, "passes": 3, "ef_sweep": [..], "k_max": 100, "latency_queries": q1}
  dir holds base.f32 (n x d float32, unit rows), queries.f32 (q x d), gt.i32 (q x k_max: the C# exact top-k rows).
  build: builds hnswlib at T threads (add_items, num_threads=T), saves hnsw.bin; reports vectors/s, RSS delta, file bytes.
  query: loads hnsw.bin; per ef: recall@1/10/100 against gt and single-query latency (one knn_query per query,
         num_threads=1) or, at T=2, batch throughput (knn_query(num_threads=2)); FAISS IndexFlatIP: exact top-k agreement
         with gt, single-query latency at 1 thread, batch throughput at T threads.
Needs Debian's python3-hnswlib and python3-faiss: run with /usr/bin/python3. The C# side fixes OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS and MKL_NUM_THREADS to T and records them."""
import json, os, sys, time
import numpy as np

cfg = json.load(open(sys.argv[1]))
mode, d, n, q, T = cfg["mode"], cfg["dim"], cfg["n"], cfg["queries"], cfg["threads"]
folder = cfg["dir"]
base = np.fromfile(os.path.join(folder, "base.f32"), dtype=np.float32).reshape(n, d)


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


out = {"mode": mode, "threads": T, "n": n,
       "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}}
import hnswlib
out["hnswlib"] = getattr(hnswlib, "__version__", "0.6.2 (Debian python3-hnswlib; no __version__)")

if mode == "build":
    r0 = rss()
    idx = hnswlib.Index(space="ip", dim=d)
    idx.init_index(max_elements=n, ef_construction=cfg["ef_construction"], M=cfg["m"])
    t = time.perf_counter()
    idx.add_items(base, np.arange(n), num_threads=T)
    secs = time.perf_counter() - t
    out["build_seconds"] = secs
    out["build_vectors_per_s"] = n / secs
    out["rss_delta_bytes_per_vector"] = (rss() - r0) / n
    path = os.path.join(folder, "hnsw.bin")
    idx.save_index(path)
    out["disk_bytes_per_vector"] = os.path.getsize(path) / n
    print(json.dumps(out))
    sys.exit(0)

import faiss
faiss.omp_set_num_threads(T)
out["faiss"] = faiss.__version__
queries = np.fromfile(os.path.join(folder, "queries.f32"), dtype=np.float32).reshape(q, d)
kmax = cfg["k_max"]
gt = np.fromfile(os.path.join(folder, "gt.i32"), dtype=np.int32).reshape(q, kmax)
lat_n = min(q, cfg["latency_queries"])

idx = hnswlib.Index(space="ip", dim=d)
idx.load_index(os.path.join(folder, "hnsw.bin"), max_elements=n)


def recall(found, k):
    return float(np.mean([len(set(found[i, :k].tolist()) & set(gt[i, :k].tolist())) / k for i in range(q)]))


sweep = []
for ef in cfg["ef_sweep"]:
    idx.set_ef(ef)
    labels, _ = idx.knn_query(queries, k=kmax, num_threads=T)  # hnswlib searches with ef = max(ef, k)
    e = {"ef": ef, "recall_at_1": recall(labels, 1), "recall_at_10": recall(labels, 10), "recall_at_100": recall(labels, 100)}
    labels10, _ = idx.knn_query(queries, k=10, num_threads=T)
    e["recall_at_10_k10"] = recall(labels10, 10)  # k=10 searched with ef as set: the speed runs' recall
    if T == 1:
        # The fastest of `passes` timed passes (least summed latency), as the C# side takes its own.
        best = None
        for _ in range(cfg.get("passes", 1)):
            lat = []
            for i in range(lat_n):
                t = time.perf_counter(); idx.knn_query(queries[i:i + 1], k=10, num_threads=1); lat.append(time.perf_counter() - t)
            if best is None or sum(lat) < sum(best):
                best = lat
        lat = best
        e["p50_ms"], e["p99_ms"], e["qps"] = pct(lat, 50) * 1e3, pct(lat, 99) * 1e3, len(lat) / sum(lat)
    else:
        t = time.perf_counter(); idx.knn_query(queries[:lat_n], k=10, num_threads=T); e["qps"] = lat_n / (time.perf_counter() - t)
    sweep.append(e)
out["hnsw_sweep"] = sweep

flat = faiss.IndexFlatIP(d)
flat.add(base)
_, fl = flat.search(queries, kmax)
out["flat_agreement_at_10_with_gt"] = recall(fl, 10)
out["flat_agreement_at_100_with_gt"] = recall(fl, 100)
if T == 1:
    lat = []
    for i in range(lat_n):
        t = time.perf_counter(); flat.search(queries[i:i + 1], 10); lat.append(time.perf_counter() - t)
    out["flat_p50_ms"], out["flat_p99_ms"], out["flat_qps_single_query"] = pct(lat, 50) * 1e3, pct(lat, 99) * 1e3, len(lat) / sum(lat)
t = time.perf_counter(); flat.search(queries[:lat_n], 10); out["flat_qps_batch"] = lat_n / (time.perf_counter() - t)
print(json.dumps(out))
