"""Checks the two data files of experiment 005 and prints the counts tables.

Run from anywhere with plain Python 3 (standard library only):
    python3 005_semantics_vs_syntax/data/check_data.py
Exits non-zero if a check fails; the tables it prints are the ones in DATASHEET.md.
"""

import collections
import json
import re
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIN_TOPICS, MIN_TEXTS_PER_TOPIC, MIN_TEXTS = 8, 40, 320
MIN_WORDS, MAX_WORDS = 5, 40
MIN_CLOZE = {"math": 110, "nonmath": 110}
problems = []


def fail(msg):
    problems.append(msg)


def read_jsonl(path, keys):
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            fail(f"{path.name}:{n}: not JSON ({err})")
            continue
        if list(row) != keys:
            fail(f"{path.name}:{n}: keys {list(row)} != {keys}")
        if not all(isinstance(row.get(k), str) for k in keys):
            fail(f"{path.name}:{n}: a value is not a string")
        rows.append(row)
    ids = collections.Counter(r.get("id") for r in rows)
    for i, c in ids.items():
        if c > 1:
            fail(f"{path.name}: id {i} used {c} times")
    return rows


def has_emoji(text):
    return any(unicodedata.category(ch) == "So" for ch in text)


# ---------------------------------------------------------------- matched pairs
pairs = read_jsonl(HERE / "matched_pairs.jsonl", ["id", "topic", "form", "pair", "text"])
forms_of = collections.defaultdict(list)  # topic -> forms in file order
pair_forms = collections.defaultdict(set)  # (topic, pair) -> forms present
counts = collections.Counter()  # (topic, form) -> texts
for r in pairs:
    t, f = r["topic"], r["form"]
    if f not in forms_of[t]:
        forms_of[t].append(f)
    counts[t, f] += 1
    pair_forms[t, r["pair"]].add(f)
    if not re.fullmatch(r"[a-z][a-z_]*", t) or not re.fullmatch(r"[a-z][a-z_]*", f):
        fail(f"{r['id']}: topic/form not snake_case")
    m = re.fullmatch(rf"{re.escape(t)}-{re.escape(f)}-(\d{{3}})", r["id"])
    if not m or r["pair"] != f"{t}-{m.group(1)}":
        fail(f"{r['id']}: id and pair {r['pair']} do not follow <topic>-<form>-NNN / <topic>-NNN")
    words = len(r["text"].split())
    if not MIN_WORDS <= words <= MAX_WORDS:
        fail(f"{r['id']}: {words} whitespace-separated words, want {MIN_WORDS}-{MAX_WORDS}")
    # the spelled-out forms must not fall back on the other form's surface
    if f in ("words", "spoken", "description") and t != "emotion" and re.search(r"\d", r["text"]):
        fail(f"{r['id']}: digits in a {f} text")
    if f == "spoken" and re.search(r"[/@#?&=]|://", r["text"]):
        fail(f"{r['id']}: URL punctuation in a spoken text")
    if t == "emotion" and has_emoji(r["text"]) != (f == "emoji"):
        fail(f"{r['id']}: emoji present={has_emoji(r['text'])} in form {f}")

texts = collections.Counter(r["text"].strip().lower() for r in pairs)
for text, c in texts.items():
    if c > 1:
        fail(f"text repeated {c} times: {text!r}")
for (t, p), fs in pair_forms.items():
    if fs != set(forms_of[t]):
        fail(f"pair {p}: forms {sorted(fs)} != {forms_of[t]}")
if len(forms_of) < MIN_TOPICS:
    fail(f"{len(forms_of)} topics < {MIN_TOPICS}")
for t, fs in forms_of.items():
    if not 2 <= len(fs) <= 3:
        fail(f"{t}: {len(fs)} forms")
    per_form = {counts[t, f] for f in fs}
    if len(per_form) != 1:
        fail(f"{t}: unbalanced forms {[(f, counts[t, f]) for f in fs]}")
    if sum(counts[t, f] for f in fs) < MIN_TEXTS_PER_TOPIC:
        fail(f"{t}: fewer than {MIN_TEXTS_PER_TOPIC} texts")
if len(pairs) < MIN_TEXTS:
    fail(f"{len(pairs)} texts < {MIN_TEXTS}")

# ---------------------------------------------------------------- cloze items
cloze = read_jsonl(HERE / "cloze_items.jsonl", ["id", "domain", "kind", "prompt", "answer"])
ccounts = collections.Counter()
kinds = collections.defaultdict(collections.Counter)
prompts = collections.Counter(r["prompt"] for r in cloze)
for r in cloze:
    d = r["domain"]
    ccounts[d] += 1
    kinds[d][r["kind"]] += 1
    if d not in MIN_CLOZE:
        fail(f"{r['id']}: domain {d!r}")
    if not re.fullmatch(rf"{d}-\d{{3}}", r["id"]):
        fail(f"{r['id']}: id does not follow <domain>-NNN")
    if not r["answer"].strip():
        fail(f"{r['id']}: empty answer")
    if r["answer"] != r["answer"].rstrip() or r["answer"].lstrip() != r["answer"].strip():
        fail(f"{r['id']}: answer has trailing or double leading whitespace")
    if not r["prompt"].strip() or r["prompt"] != r["prompt"].rstrip():
        fail(f"{r['id']}: prompt empty or ends in whitespace (the space belongs to the answer)")
    if not r["answer"].startswith(" ") and not r["prompt"].endswith(("$", "\n")):
        fail(f"{r['id']}: answer does not start with a space")
    if prompts[r["prompt"]] > 1:
        fail(f"{r['id']}: prompt repeated")
    if len(r["answer"].split()) > 3:
        fail(f"{r['id']}: answer longer than three words")
for d, n in MIN_CLOZE.items():
    if ccounts[d] < n:
        fail(f"cloze {d}: {ccounts[d]} < {n}")

# ---------------------------------------------------------------- report
print("matched_pairs.jsonl\n")
print("| topic | forms | pairs | texts per form | texts |")
print("| --- | --- | ---: | ---: | ---: |")
for t, fs in forms_of.items():
    n = counts[t, fs[0]]
    print(f"| `{t}` | {' / '.join(f'`{f}`' for f in fs)} | {n} | {n} | {n * len(fs)} |")
print(
    f"| **total** | {sum(len(fs) for fs in forms_of.values())} topic+form categories "
    f"| {len(pair_forms)} | | **{len(pairs)}** |"
)
print("\nwhitespace-separated words per text (a bare URL or `5!` counts as one word)\n")
print("| topic | form | texts | min | median | max |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for t, fs in forms_of.items():
    for f in fs:
        wc = sorted(len(r["text"].split()) for r in pairs if r["topic"] == t and r["form"] == f)
        print(f"| `{t}` | `{f}` | {len(wc)} | {wc[0]} | {wc[len(wc) // 2]} | {wc[-1]} |")
print("\ncloze_items.jsonl\n")
print("| domain | kind | items |")
print("| --- | --- | ---: |")
for d in MIN_CLOZE:
    for k, n in kinds[d].items():
        print(f"| `{d}` | `{k}` | {n} |")
    print(f"| **`{d}`** | all | **{ccounts[d]}** |")
print(f"| **total** | | **{len(cloze)}** |")

if problems:
    print(f"\n{len(problems)} problem(s):", *problems, sep="\n  ")
    sys.exit(1)
print("\nall checks passed")
