#!/usr/bin/env python3
"""PyTorch peer of `mlnet-align bench` training: the same pooled MLP projector pair (paper 'mlp' head:
p = Linear(d, E); LayerNorm(Dropout(Linear(E, E)(GELU(p))) + p)), symmetric InfoNCE with a learnable temperature,
AdamW, batch 256, on random features. Prints {"steps_per_second": ...} as JSON.
Needs Debian's python3-torch (run with /usr/bin/python3) and libopenblas0-pthread for a fair CPU peer."""
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 60
torch.set_num_threads(threads)
torch.manual_seed(0)

class Head(nn.Module):
    def __init__(self, d, e):
        super().__init__()
        self.proj = nn.Linear(d, e); self.fc = nn.Linear(e, e); self.drop = nn.Dropout(0.1); self.norm = nn.LayerNorm(e)
    def forward(self, x):
        p = self.proj(x)
        return self.norm(self.drop(self.fc(F.gelu(p))) + p)

img, txt = Head(512, 512), Head(384, 512)
tau = nn.Parameter(torch.tensor(0.07))
opt = torch.optim.AdamW(list(img.parameters()) + list(txt.parameters()) + [tau], lr=1e-3, weight_decay=0.02)
x, t = torch.randn(steps, 256, 512), torch.randn(steps, 256, 384)
labels = torch.arange(256)
def step(i):
    opt.zero_grad()
    zi = F.normalize(img(x[i]), dim=1); zt = F.normalize(txt(t[i]), dim=1)
    logits = zi @ zt.t() / tau
    loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
    loss.backward(); opt.step()
    with torch.no_grad(): tau.clamp_(0.001, 0.5)
for i in range(5): step(i)  # warm-up
start = time.perf_counter()
for i in range(steps): step(i)
print(json.dumps({"steps_per_second": steps / (time.perf_counter() - start), "threads": threads, "torch": torch.__version__}))
