#!/usr/bin/env python3
"""Write the knowledge (factual-recall) task datasets from knowledge_data.py.

Usage (from the repository root):
    python tasks/scripts/build_knowledge.py   # (re)write the JSON files, then check them

Writes workbench/data/tasks_builtin/{country-capital,country-currency,country-language,landmark-country,
person-occupation,product-company}.json with json.dump(data, f, ensure_ascii=False,
indent=1). Deterministic: the order is the order of the tables in knowledge_data.py.
Standard library only. After writing, runs check_knowledge.py and exits with its status.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS_DIR = HERE.parents[1] / "workbench" / "data" / "tasks_builtin"  # package data
sys.path.insert(0, str(HERE))

import check_knowledge  # noqa: E402
import knowledge_data as kd  # noqa: E402


def build_all():
    def from_countries(column):
        return [{"input": c, "output": row[column]} for c, row in kd.COUNTRIES.items() if row[column]]

    def from_table(table):
        return [{"input": x, "output": y} for x, y in kd.parse_pairs(table)]

    return {
        "country-capital": from_countries("capital"),
        "country-currency": from_countries("currency"),
        "country-language": from_countries("language"),
        "landmark-country": from_table(kd.LANDMARKS),
        "person-occupation": from_table(kd.PEOPLE),
        "product-company": from_table(kd.PRODUCTS),
    }


def main():
    for name, data in build_all().items():
        with open(TASKS_DIR / f"{name}.json", "w", encoding="utf-8", newline="\n") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
        print(f"wrote {name}.json ({len(data)} pairs)")
    return check_knowledge.main([])


if __name__ == "__main__":
    sys.exit(main())
