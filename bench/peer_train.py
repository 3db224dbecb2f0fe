#!/usr/bin/env python3
"""PyTorch peer of `mlnet-align bench` training, the same models as the C# side on random features, batch 256:
  pooled: ProjectorOptions.PooledMlp(512): an 'mlp' head per side (p = Linear(d, E); LayerNorm(Dropout(Linear(E, E)(GELU(p))) + p)).
  token:  ProjectorOptions.Paper(512): image = normalize(mean_t P_loc(tokens) + P_cls(pooled)), both 'token' projectors
          (LayerNorm -> Dropout -> Linear + Linear(GELU(Linear))); text = normalize(mlp(masked mean of Q_loc(tokens)));
          49 image tokens of 512, 16 text tokens of 384 (all real), pooled 512 / 384.
Symmetric InfoNCE with a learnable temperature, AdamW (decay on rank >= 2 weights and tau), tau clamped to [0.001, 0.5].
  token_pooled: the token config computed as the C# trainer does (TokenProjector.ForwardPooled: pool, then the affine maps).
Usage: peer_train.py THREADS STEPS [pooled|token|token_pooled]. Prints one JSON line: steps_per_second, threads, torch, blas.
Needs Debian's python3-torch (run with /usr/bin/python3) and libopenblas0-pthread for a fair CPU peer."""
import json, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 60
mode = sys.argv[3] if len(sys.argv) > 3 else "pooled"
torch.set_num_threads(threads)
torch.manual_seed(0)
E, B = 512, 256

class Mlp(nn.Module):
    def __init__(self, d, e):
        super().__init__()
        self.proj = nn.Linear(d, e); self.fc = nn.Linear(e, e); self.drop = nn.Dropout(0.1); self.norm = nn.LayerNorm(e)
    def forward(self, x):
        p = self.proj(x)
        return self.norm(self.drop(self.fc(F.gelu(p))) + p)

class TokenProj(nn.Module):
    def __init__(self, d, e):
        super().__init__()
        self.norm = nn.LayerNorm(d); self.drop = nn.Dropout(0.1)
        self.linear = nn.Linear(d, e); self.fc1 = nn.Linear(d, e); self.fc2 = nn.Linear(e, e)
    def forward(self, x):
        h = self.drop(self.norm(x))
        return self.linear(h) + self.fc2(F.gelu(self.fc1(h)))
    def pooled(self, x, w=None):
        # token_pooled: pool h and GELU(fc1(h)) first, then the affine maps (what the C# trainer computes)
        h = self.drop(self.norm(x)); g = F.gelu(self.fc1(h))
        if w is None: return self.linear(h.mean(1)) + self.fc2(g.mean(1))
        w1 = w.unsqueeze(1)
        return (F.linear(torch.bmm(w1, h).squeeze(1), self.linear.weight) + F.linear(torch.bmm(w1, g).squeeze(1), self.fc2.weight)
                + w.sum(1, keepdim=True) * (self.linear.bias + self.fc2.bias))

if mode == "pooled":
    img, txt = Mlp(512, E), Mlp(384, E)
    mods = [img, txt]
    x, t = torch.randn(steps + 5, B, 512), torch.randn(steps + 5, B, 384)
    def forward(i):
        return F.normalize(img(x[i]), dim=1), F.normalize(txt(t[i]), dim=1)
elif mode in ("token", "token_pooled"):
    iloc, icls, tloc, tglob = TokenProj(512, E), TokenProj(512, E), TokenProj(384, E), Mlp(E, E)
    mods = [iloc, icls, tloc, tglob]
    # A few distinct batches, cycled (token tensors are large).
    k = 4
    xp, xt = torch.randn(k, B, 512), torch.randn(k, B, 49, 512)
    tt, tm = torch.randn(k, B, 16, 384), torch.ones(k, B, 16)
    def forward(i):
        j = i % k
        if mode == "token_pooled":
            zi = F.normalize(iloc.pooled(xt[j]) + icls(xp[j]), dim=1)
            u = tloc.pooled(tt[j], tm[j] / tm[j].sum(1, keepdim=True).clamp_min(1))
            return zi, F.normalize(tglob(u), dim=1)
        zi = F.normalize(iloc(xt[j]).mean(1) + icls(xp[j]), dim=1)
        m = tm[j].unsqueeze(-1)
        u = (tloc(tt[j]) * m).sum(1) / tm[j].sum(1, keepdim=True).clamp_min(1)
        return zi, F.normalize(tglob(u), dim=1)
else:
    sys.exit(f"mode must be pooled, token or token_pooled, got {mode}")

tau = nn.Parameter(torch.tensor(0.07))
decay = [p for m in mods for p in m.parameters() if p.dim() >= 2] + [tau]
no_decay = [p for m in mods for p in m.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.02}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
labels = torch.arange(B)
def step(i):
    opt.zero_grad()
    zi, zt = forward(i)
    logits = zi @ zt.t() / tau
    loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
    loss.backward(); opt.step()
    with torch.no_grad(): tau.clamp_(0.001, 0.5)
    return loss.item()  # the C# trainer reads the loss every step too
for i in range(5): step(i)  # warm-up
start = time.perf_counter()
for i in range(steps): step(i + 5 if mode == "pooled" else i)
elapsed = time.perf_counter() - start
# The BLAS actually loaded (Debian's torch links the generic libblas.so.3, which the alternatives system points at).
with open("/proc/self/maps") as f:
    libs = sorted({line.split()[-1] for line in f if ("blas" in line or "mkl" in line) and "/" in line})
blas = ", ".join(os.path.realpath(l) for l in libs) or "none loaded"
# The kernel OpenBLAS picked (its core type decides the GEMM kernels, and OPENBLAS_CORETYPE overrides it), from
# threadpoolctl when it is installed; null when it is not (the mapped library above still names the BLAS).
try:
    from threadpoolctl import threadpool_info
    pools = [{k: p.get(k) for k in ("internal_api", "version", "architecture", "threading_layer", "num_threads", "filepath")}
             for p in threadpool_info() if p.get("user_api") == "blas"]
except ImportError:
    pools = None
print(json.dumps({"steps_per_second": steps / elapsed, "threads": threads, "mode": mode, "torch": torch.__version__, "blas": blas,
                  "threadpoolctl_blas": pools,
                  "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}}))
