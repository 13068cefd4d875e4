"""Write the lexical task files (workbench/data/tasks_builtin/<name>.json) from lexical_data_*.py.

Run from anywhere:  python tasks/scripts/build_lexical.py
Then check them:    python tasks/scripts/check_lexical.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS = HERE.parents[1] / "workbench" / "data" / "tasks_builtin"  # package data
sys.path.insert(0, str(HERE))

import lexical_data_a as A  # noqa: E402
import lexical_data_b as B  # noqa: E402
import lexical_data_c as C  # noqa: E402


def two_columns(text: str) -> list[tuple[str, str]]:
    pairs = []
    for n, line in enumerate(text.strip().splitlines(), 1):
        parts = line.split()
        if len(parts) != 2:
            raise SystemExit(f"bad word-list line {n}: {line!r} (want exactly two words)")
        pairs.append((parts[0], parts[1]))
    return pairs


def translation(col: int) -> list[tuple[str, str]]:
    pairs = []
    for line in B.TRANSLATION.strip().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != 4:
            raise SystemExit(f"bad translation row: {line!r}")
        if cells[col] != "-":
            pairs.append((cells[0], cells[col]))
    return pairs


DATASETS = {
    "antonym": lambda: two_columns(A.ANTONYM),
    "synonym": lambda: two_columns(A.SYNONYM),
    "english-french": lambda: translation(1),
    "english-spanish": lambda: translation(2),
    "english-german": lambda: translation(3),
    "present-past": lambda: two_columns(C.PRESENT_PAST),
    "singular-plural": lambda: two_columns(C.SINGULAR_PLURAL),
    "adjective-comparative": lambda: two_columns(C.ADJECTIVE_COMPARATIVE),
}


def main() -> None:
    for name, make in DATASETS.items():
        data = [{"input": x, "output": y} for x, y in make()]
        path = TASKS / f"{name}.json"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"{path.name}: {len(data)} pairs")


if __name__ == "__main__":
    main()
