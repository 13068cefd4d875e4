"""Check the lexical task files in workbench/data/tasks_builtin/ (format errors fail; rule breaks listed).

Usage:
    python tasks/scripts/check_lexical.py            # the lexical tasks below
    python tasks/scripts/check_lexical.py FILE ...   # any task files (format checks only,
                                                     # plus the word checks for known names)
    python tasks/scripts/check_lexical.py --notes    # also print the pairs that break the
                                                     # regular spelling rules, to read by eye

Errors (exit status 1): not a JSON list of {"input", "output"} objects, a value that is not
a non-empty string, leading/trailing whitespace, an input seen twice, input == output, a
lexical task with fewer than MIN_PAIRS pairs or with an input that is not one lowercase word.
Notes (never fail): irregular forms (went, children, better, ...), outputs that are not one word.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

TASKS = Path(__file__).resolve().parents[2] / "workbench" / "data" / "tasks_builtin"  # package data
MIN_PAIRS = 120

LEXICAL = [
    "antonym",
    "synonym",
    "english-french",
    "english-spanish",
    "english-german",
    "present-past",
    "singular-plural",
    "adjective-comparative",
]

VOWELS = set("aeiou")
ONE_WORD = re.compile(r"^[a-z]+(-[a-z]+)*$")  # lowercase English word, hyphens allowed
ONE_TOKEN = re.compile(r"^[^\s]+$")


# --- regular English inflection, used only to pick out forms worth a second look -------------


def _cvc(w: str) -> bool:
    return len(w) >= 3 and w[-1] not in VOWELS | set("wxy") and w[-2] in VOWELS and w[-3] not in VOWELS


def regular_past(v: str) -> set[str]:
    if v.endswith("e"):
        return {v + "d"}
    if len(v) > 1 and v.endswith("y") and v[-2] not in VOWELS:
        return {v[:-1] + "ied"}
    forms = {v + "ed"}
    if _cvc(v):
        forms.add(v + v[-1] + "ed")
    return forms


def regular_plural(n: str) -> set[str]:
    if n.endswith(("s", "x", "z", "ch", "sh")):
        return {n + "es"}
    if len(n) > 1 and n.endswith("y") and n[-2] not in VOWELS:
        return {n[:-1] + "ies"}
    return {n + "s"}


def regular_comparative(a: str) -> set[str]:
    if a.endswith("e"):
        return {a + "r"}
    if len(a) > 1 and a.endswith("y") and a[-2] not in VOWELS:
        return {a[:-1] + "ier"}
    forms = {a + "er"}
    if _cvc(a):
        forms.add(a + a[-1] + "er")
    return forms


RULES = {
    "present-past": regular_past,
    "singular-plural": regular_plural,
    "adjective-comparative": regular_comparative,
}


# --- checks ----------------------------------------------------------------------------------


def check_file(path: Path, notes: bool) -> tuple[list[str], int]:
    """Return (errors, number of entries) for one task file."""
    errors: list[str] = []
    name = path.stem
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return [f"{path.name}: cannot read as UTF-8 JSON: {e}"], 0
    if not isinstance(data, list):
        return [f"{path.name}: top level is {type(data).__name__}, not a list"], 0

    seen: dict[str, int] = {}
    good: list[tuple[str, str]] = []
    for i, entry in enumerate(data):
        where = f"{path.name}[{i}]"
        if not isinstance(entry, dict):
            errors.append(f"{where}: not an object: {entry!r}")
            continue
        if set(entry) != {"input", "output"}:
            errors.append(f"{where}: keys are {sorted(entry)}, want exactly ['input', 'output']")
            continue
        x, y = entry["input"], entry["output"]
        bad = False
        for key, v in (("input", x), ("output", y)):
            if not isinstance(v, str):
                errors.append(f"{where}: {key} is {type(v).__name__}, not a string")
                bad = True
            elif not v.strip():
                errors.append(f"{where}: {key} is empty")
                bad = True
            elif v != v.strip():
                errors.append(f"{where}: {key} {v!r} has leading/trailing whitespace")
                bad = True
        if isinstance(x, str):
            key = x.strip()
            if key in seen:
                errors.append(f"{where}: input {x!r} already at entry {seen[key]}")
            seen.setdefault(key, i)
        if bad:
            continue
        if x == y:
            errors.append(f"{where}: input and output are the same ({x!r})")
        good.append((x, y))

    if name in LEXICAL:
        if len(data) < MIN_PAIRS:
            errors.append(f"{path.name}: {len(data)} pairs, want at least {MIN_PAIRS}")
        for x, y in good:
            if not ONE_WORD.match(x):
                errors.append(f"{path.name}: input {x!r} is not one lowercase English word")
            if not ONE_TOKEN.match(y):
                print(f"  note {path.name}: output {y!r} (for {x!r}) has a space")
            if name in ("antonym", "synonym", "present-past", "singular-plural", "adjective-comparative"):
                if not ONE_WORD.match(y):
                    errors.append(f"{path.name}: output {y!r} is not one lowercase English word")
            if x != y and x.lower() == y.lower():
                errors.append(f"{path.name}: {x!r} -> {y!r} differ only in case")
        if name in RULES and notes:
            odd = [(x, y) for x, y in good if y not in RULES[name](x)]
            print(f"  {path.name}: {len(odd)} pairs off the regular rule (re-read these):")
            for x, y in odd:
                print(f"    {x} -> {y}")
        if name == "english-german" and notes:
            caps = [(x, y) for x, y in good if y[:1].isupper()]
            print(f"  {path.name}: {len(caps)} capitalised outputs (should all be nouns)")
    return errors, len(data)


def main(argv: list[str]) -> int:
    notes = "--notes" in argv
    args = [a for a in argv if a != "--notes"]
    paths = [Path(a) for a in args] if args else [TASKS / f"{n}.json" for n in LEXICAL]
    all_errors: list[str] = []
    for p in paths:
        if not p.exists():
            all_errors.append(f"{p}: missing")
            continue
        errs, n = check_file(p, notes)
        print(f"{p.name}: {n} pairs, {len(errs)} errors")
        all_errors += errs
    for e in all_errors:
        print("ERROR", e)
    return 1 if all_errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
