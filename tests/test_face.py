"""`import workbench as wb` gives what a notebook needs: every name the notebooks use is on the face."""

import json
import re
from pathlib import Path

import workbench as wb

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_every_face_name_resolves():
    for name in wb.__all__:
        assert getattr(wb, name) is not None, name


def test_notebooks_import_only_the_face():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        code = "\n".join(
            "".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"
        )
        deep = re.findall(r"^\s*(?:from workbench\.\S+ import .*|import workbench\.\S+)", code, re.M)
        assert not deep, f"{path.name} imports past the face: {deep}"
        for name in set(re.findall(r"\bwb\.([A-Za-z_]+)", code)):
            assert name in wb.__all__, f"{path.name} uses wb.{name}, which the face does not have"


def test_unknown_name_says_what_exists():
    try:
        wb.not_a_name  # noqa: B018
    except AttributeError as e:
        assert "load_model" in str(e)
    else:
        raise AssertionError("wb.not_a_name should raise AttributeError")
