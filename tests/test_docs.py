"""The documentation site: `make docs` builds with warnings as errors, and its pages show the whole
`wb.` face (``scan_heads`` among it) and every CLI command; the built-in tasks are package data.

The build is the one `make docs` runs (Sphinx, ``-W --keep-going``), into a temporary folder; the
HTML is then read back. Skipped where the ``docs`` extra is not installed (`make setup` installs it).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    for extra in ("sphinx", "myst_nb", "furo", "sphinxarg"):
        pytest.importorskip(extra, reason="the docs extra is not installed: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("docs")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", str(DOCS), str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"`make docs` fails:\n{done.stdout}\n{done.stderr}"
    # docutils' own messages (text Sphinx parses outside a document, e.g. the CLI's help) bypass -W
    messages = re.findall(r".*\((?:WARNING|ERROR|SEVERE)/\d\).*", done.stdout + done.stderr)
    assert not messages, "the docs build reports:\n" + "\n".join(messages)
    return out


def html_ids(page: Path) -> set[str]:
    return set(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))


def test_api_page_documents_every_face_name(site):
    import workbench as wb

    ids = html_ids(site / "api.html")
    assert "workbench.scan_heads" in ids
    modules = {name for name in wb.__all__ if type(getattr(wb, name)).__name__ == "module"}
    documented = {name for name in wb.__all__ if f"workbench.{name}" in ids}
    module_ids = {name for name in modules if f"module-{getattr(wb, name).__name__}" in ids}
    missing = set(wb.__all__) - documented - module_ids
    assert not missing, f"names of the face missing from api.html: {sorted(missing)}"
    # a documented function shows its docstring, not only its name
    text = (site / "api.html").read_text(encoding="utf-8")
    assert "Causal indirect effect of each head" in text


def test_cli_page_shows_every_command(site):
    from workbench.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    commands = set(sub.choices)
    assert {"run", "study", "figures"} <= commands
    ids = html_ids(site / "cli.html")
    missing = {c for c in commands if f"workbench-{c}" not in ids}
    assert not missing, f"CLI commands missing from cli.html: {sorted(missing)}"
    # and their options, read from the parser: `run`'s --task at least
    assert "--task" in (site / "cli.html").read_text(encoding="utf-8")


def test_every_page_is_built_and_every_study_page_is_listed(site):
    sources = [p.relative_to(DOCS).with_suffix("") for p in DOCS.rglob("*.md")]
    pages = [s for s in sources if s.parts[0] not in ("_generated", "tables", "_build")]
    for page in pages:
        assert (site / page).with_suffix(".html").exists(), f"{page}.md was not built"
    studies = (site / "studies.html").read_text(encoding="utf-8")
    for page in sorted((DOCS / "studies").glob("*.md")):
        assert f'href="studies/{page.stem}.html"' in studies, f"studies.html does not list {page.name}"
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        assert (site / "notebooks" / nb.name).with_suffix(".html").exists(), f"{nb.name} not rendered"


def test_builtin_tasks_are_package_data():
    """The task files live inside the package, and pyproject's package-data globs cover every one."""
    import tomllib

    from workbench.data.contrasts import steering_dir
    from workbench.data.tasks import list_tasks, tasks_dir

    package = REPO / "workbench"
    assert package in tasks_dir().resolve().parents and package in steering_dir().resolve().parents
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = config["package-data"]["workbench.data"]
    data = package / "data"
    covered = {p for g in globs for p in data.glob(g)}
    shipped = {p for p in (data / "tasks_builtin").rglob("*") if p.is_file()}
    assert shipped and shipped <= covered, f"not package data: {sorted(shipped - covered)}"
    assert len(list_tasks()) >= 30
    assert config["packages"]["find"]["include"] == ["workbench*"]
