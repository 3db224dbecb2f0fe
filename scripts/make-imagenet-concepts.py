#!/usr/bin/python3
"""Builds src/MLNet.Align.Cli/concepts/imagenet-1k.tsv: the 1000 ImageNet-1k classes in canonical order with their
WordNet 3.0 synset id (wnid), a unique display name and the WordNet gloss. Inputs come from Debian packages only:

    apt-get download opencv-doc && dpkg-deb --fsys-tarfile opencv-doc_*.deb | tar x \
        ./usr/share/doc/opencv-doc/examples/data/dnn/classification_classes_ILSVRC2012.txt
    apt-get install -y --no-install-recommends wordnet-base        # /usr/share/wordnet/data.noun
    /usr/bin/python3 scripts/make-imagenet-concepts.py [CLASSES_TXT] [DATA_NOUN]

ImageNet-1k classes are ordered by wnid = 'n' + the 8-digit WordNet noun synset offset, and each line lists that
synset's lemmas. So walking data.noun in increasing offset order and taking, for each class, the next synset whose
lemmas contain all of the line's names recovers every wnid (the script fails if one is not found).
Where two classes share a first name (crane, maillot) the name gets a qualifier: the next synonym, else the WordNet
lexicographer file (animal, artifact).
"""
import os, sys

classes_txt = sys.argv[1] if len(sys.argv) > 1 else "usr/share/doc/opencv-doc/examples/data/dnn/classification_classes_ILSVRC2012.txt"
data_noun = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/wordnet/data.noun"
LEX = {3: "Tops", 4: "act", 5: "animal", 6: "artifact", 7: "attribute", 8: "body", 9: "cognition", 10: "communication", 11: "event",
       12: "feeling", 13: "food", 14: "group", 15: "location", 16: "motive", 17: "object", 18: "person", 19: "phenomenon", 20: "plant",
       21: "possession", 22: "process", 23: "quantity", 24: "relation", 25: "shape", 26: "state", 27: "substance", 28: "time"}

synsets = []  # (offset, lexfile, lemmas(lowercase), gloss)
with open(data_noun, encoding="utf-8") as f:
    for line in f:
        if line.startswith("  "):
            continue  # licence header
        head, _, gloss = line.partition(" | ")
        p = head.split()
        offset, lex, n = int(p[0]), int(p[1]), int(p[3], 16)
        lemmas = [p[4 + 2 * i].replace("_", " ") for i in range(n)]
        lemmas = [l.split("(")[0] for l in lemmas]  # strip adjective markers such as (a)
        synsets.append((offset, lex, [l.lower() for l in lemmas], gloss.strip()))
synsets.sort()

rows, at = [], 0
with open(classes_txt, encoding="utf-8") as f:
    names = [l.strip() for l in f if l.strip()]
assert len(names) == 1000, len(names)
for i, line in enumerate(names):
    syn = [s.strip() for s in line.split(",") if s.strip()]
    want = [s.lower() for s in syn]
    j = at
    while j < len(synsets) and not all(w in synsets[j][2] for w in want):
        j += 1
    if j == len(synsets):
        sys.exit(f"class {i} '{line}': no WordNet synset after offset {synsets[at - 1][0] if at else 0} holds all its names")
    offset, lex, _, gloss = synsets[j]
    rows.append([f"n{offset:08d}", syn, LEX.get(lex, str(lex)), gloss])
    at = j + 1

first = {}
for r in rows:
    first.setdefault(r[1][0], []).append(r)
out_rows = []
for wnid, syn, lex, gloss in rows:
    name = syn[0]
    if len(first[name]) > 1:
        name = f"{name} ({syn[1] if len(syn) > 1 else lex})"
    out_rows.append((wnid, name, ", ".join(syn), gloss.replace("\t", " ")))
assert len({r[1] for r in out_rows}) == 1000, "names are not unique"

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "MLNet.Align.Cli", "concepts", "imagenet-1k.tsv")
with open(out, "w", encoding="utf-8", newline="\n") as f:
    f.write("id\tname\tsynonyms\tgloss\n")
    for r in out_rows:
        f.write("\t".join(r) + "\n")
print("wrote", os.path.normpath(out), len(out_rows), "classes; duplicates renamed:", [r[1] for r in out_rows if "(" in r[1]])
