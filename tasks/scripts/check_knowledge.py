#!/usr/bin/env python3
"""Check the knowledge (factual-recall) task datasets on disk.

Usage (from the repository root):
    python tasks/scripts/check_knowledge.py            # check all six files
    python tasks/scripts/check_knowledge.py -v         # also print counts and vocabularies

Exit status 1 if any file breaks a rule, 0 otherwise. Standard library only.

Format rules (every file):
  * a JSON list of objects with exactly the keys "input" and "output";
  * both values non-empty strings without leading/trailing whitespace (and no
    doubled spaces or line breaks);
  * inputs unique within the file (so no input with two outputs either);
  * 120-200 pairs;
  * bytes identical to json.dump(data, f, ensure_ascii=False, indent=1).
Consistency rules:
  * every country (input of the three country-* files, output of landmark-country) is
    spelled exactly as in knowledge_data.COUNTRIES; the country-* files agree with it;
  * country names, capitals and currencies are plain ASCII; currencies lower case,
    one word; languages one capitalised word;
  * person-occupation outputs come from knowledge_data.OCCUPATIONS (15-25 words);
  * no output equals its input (a copy task would be trivial);
  * no input of landmark-country / product-company contains its output's name
    (e.g. "Great Wall of China" -> "China" is allowed only as a known exception).
"""

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS_DIR = HERE.parents[1] / "workbench" / "data" / "tasks_builtin"  # package data
sys.path.insert(0, str(HERE))

import knowledge_data as kd  # noqa: E402

NAMES = [
    "country-capital",
    "country-currency",
    "country-language",
    "landmark-country",
    "person-occupation",
    "product-company",
]
MIN_PAIRS, MAX_PAIRS = 120, 200
# Inputs that legitimately contain their answer.
CONTAINS_ANSWER_OK = {"Great Wall of China", "Gateway of India"}


def format_errors(name, raw_bytes):
    try:
        data = json.loads(raw_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return [f"{name}: unreadable JSON ({e})"], None
    errs = []
    if not isinstance(data, list):
        return [f"{name}: not a JSON list"], None
    if not MIN_PAIRS <= len(data) <= MAX_PAIRS:
        errs.append(f"{name}: {len(data)} pairs, expected {MIN_PAIRS}-{MAX_PAIRS}")
    seen = {}
    good = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or set(item) != {"input", "output"}:
            errs.append(f"{name}[{i}]: not an {{input, output}} object: {item!r}")
            continue
        ok = True
        for key in ("input", "output"):
            v = item[key]
            if not isinstance(v, str) or not v:
                errs.append(f"{name}[{i}].{key}: not a non-empty string: {v!r}")
                ok = False
            elif v != v.strip():
                errs.append(f"{name}[{i}].{key}: leading/trailing whitespace: {v!r}")
                ok = False
            elif "  " in v or "\n" in v or "\t" in v:
                errs.append(f"{name}[{i}].{key}: doubled space or control character: {v!r}")
                ok = False
        if not ok:
            continue
        x, y = item["input"], item["output"]
        if x in seen:
            what = "duplicate input" if seen[x] == y else "input with two different outputs"
            errs.append(f"{name}[{i}]: {what} {x!r} ({seen[x]!r} / {y!r})")
            continue
        if x.casefold() == y.casefold():
            errs.append(f"{name}[{i}]: output equals input {x!r}")
        seen[x] = y
        good.append((x, y))
    if raw_bytes != json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"):
        errs.append(f"{name}: not written as json.dump(data, f, ensure_ascii=False, indent=1)")
    return errs, good


def consistency_errors(pairs):
    errs = []
    countries = kd.COUNTRIES
    column = {"country-capital": "capital", "country-currency": "currency", "country-language": "language"}
    for name, col in column.items():
        got = dict(pairs.get(name) or [])
        for c, v in got.items():
            if c not in countries:
                errs.append(f"{name}: country {c!r} not spelled as in knowledge_data.COUNTRIES")
            elif countries[c][col] != v:
                errs.append(f"{name}: {c!r} -> {v!r} but knowledge_data says {countries[c][col]!r}")
            if not (c.isascii() and v.isascii()):
                errs.append(f"{name}: non-ASCII pair {c!r} -> {v!r}")
        expected = {c for c, row in countries.items() if row[col]}
        for c in sorted(expected - set(got)):
            errs.append(f"{name}: missing {c!r} (present in knowledge_data)")
    for c, v in pairs.get("country-currency") or []:
        if v != v.lower() or not re.fullmatch(r"[a-z]+", v):
            errs.append(f"country-currency: {c!r} -> {v!r} is not one lower-case word")
    for c, v in pairs.get("country-language") or []:
        if not re.fullmatch(r"[A-Z][a-z]+", v):
            errs.append(f"country-language: {c!r} -> {v!r} is not one capitalised word")
    for x, v in pairs.get("landmark-country") or []:
        if v not in countries:
            errs.append(f"landmark-country: {x!r} -> {v!r}: country not in knowledge_data.COUNTRIES")
    occ = [v for _, v in pairs.get("person-occupation") or []]
    for x, v in pairs.get("person-occupation") or []:
        if v not in kd.OCCUPATIONS:
            errs.append(f"person-occupation: {x!r} -> {v!r}: not in OCCUPATIONS")
    if occ and not 15 <= len(set(occ)) <= 25:
        errs.append(f"person-occupation: {len(set(occ))} distinct occupations, expected 15-25")
    for name in ("landmark-country", "product-company"):
        for x, v in pairs.get(name) or []:
            if v.casefold() in x.casefold() and x not in CONTAINS_ANSWER_OK:
                errs.append(f"{name}: input {x!r} contains its answer {v!r}")
    return errs


def main(argv):
    verbose = "-v" in argv
    errors, pairs = [], {}
    for name in NAMES:
        path = TASKS_DIR / f"{name}.json"
        if not path.exists():
            errors.append(f"{name}: {path} missing")
            continue
        errs, good = format_errors(name, path.read_bytes())
        errors += errs
        if good is not None:
            pairs[name] = good
    errors += consistency_errors(pairs)
    if verbose:
        for name, good in pairs.items():
            outs = {}
            for _, y in good:
                outs[y] = outs.get(y, 0) + 1
            top = ", ".join(f"{y} {n}" for y, n in sorted(outs.items(), key=lambda t: -t[1])[:8])
            print(f"{name}: {len(good)} pairs, {len(outs)} distinct outputs ({top}, ...)")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        print(f"FAILED: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"OK: {len(pairs)} knowledge datasets pass format and consistency checks")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
