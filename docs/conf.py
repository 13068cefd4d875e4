"""Sphinx configuration of the workbench's documentation site (`make docs` -> build/docs).

Pages are MyST Markdown; the notebooks (``notebooks/*.ipynb``, copied to ``docs/notebooks/`` on each
build) render with the outputs they hold and are never executed; the API page documents the ``wb.`` face
(``workbench._FACE``) and is generated here on every build, so a name added to the face appears
without editing the docs; the CLI reference is read from ``workbench.cli.build_parser``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))  # cli_parser: the CLI reference's parser

import workbench  # noqa: E402

project = "fv-workbench"
author = "The function-vector workbench team"
copyright = "the function-vector workbench team"
version = release = workbench.__version__

extensions = [
    "myst_nb",  # MyST Markdown pages and the notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # the docstrings' "Args:" sections
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "sphinxarg.ext",  # the CLI reference from the argparse parser
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_generated", "tables", "notebooks/.ipynb_checkpoints", "**/.ipynb_checkpoints"]
templates_path: list[str] = []

# The notebooks render with their stored outputs: building the docs never runs a model.
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"fv-workbench {release}"
html_static_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # jaxtyping shapes are in the docstrings; signatures stay readable
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_mock_imports: list[str] = []
nitpicky = False


def face_groups() -> list[tuple[str, list[str]]]:
    """The face's names in the order and groups of ``_FACE`` in ``workbench/__init__.py``
    (a ``# comment`` line starts a group)."""
    source = (ROOT / "workbench" / "__init__.py").read_text()
    start = source.index("_FACE = {")
    body = source[start : source.index("\n}\n", start)]
    groups: list[tuple[str, list[str]]] = []
    for line in body.splitlines()[1:]:
        line = line.strip()
        if line.startswith("#"):
            groups.append((line.lstrip("# ").strip(), []))
        elif line.startswith('"'):
            name = ast.literal_eval(line.split(":")[0])
            if not groups:
                groups.append(("the face", []))
            groups[-1][1].append(name)
    listed = {n for _, names in groups for n in names}
    missing = sorted(set(workbench._FACE) - listed)
    if missing:
        groups.append(("more", missing))
    return groups


def directive(name: str) -> str:
    """The autodoc directive for one name of the face, by what the name is."""
    obj = getattr(workbench, name)
    if inspect.ismodule(obj):
        return f".. automodule:: {obj.__name__}\n   :no-members:\n"
    if inspect.isclass(obj):
        return f".. autoclass:: workbench.{name}\n"
    if callable(obj):
        return f".. autofunction:: workbench.{name}\n"
    return f".. autodata:: workbench.{name}\n   :annotation: = {obj!r}\n"


def write_face_page() -> None:
    """``_generated/face.rst``: one autodoc entry per name of ``wb.``, grouped as ``_FACE`` is."""
    lines = []
    for title, names in face_groups():
        heading = title[0].upper() + title[1:]
        lines += [heading, "-" * len(heading), ""]
        for name in names:
            target = workbench._FACE[name]
            importlib.import_module(target)
            lines += [directive(name), ""]
    write_if_changed(DOCS / "_generated" / "face.rst", "\n".join(lines))


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file holds it already (an unchanged file keeps Sphinx's cache valid)."""
    path.parent.mkdir(exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_optional_pages() -> None:
    """Tables of contents for pages that other parts of the docs contribute, written only when the
    pages exist (an empty glob is a Sphinx warning, and warnings are errors here):
    ``studies/<name>.md`` (one page per study of ``workbench.studies.registry.STUDIES``, in its order;
    a page of no registered study is left out of every toctree, which Sphinx reports) and ``suite.md``
    (``workbench suite``)."""
    from workbench.studies.registry import STUDIES

    pages = [s.page.removesuffix(".md") for s in STUDIES.values() if (DOCS / s.page).exists()]
    toc = "```{toctree}\n:maxdepth: 1\n\n" + "\n".join(pages) + "\n```\n" if pages else ""
    write_if_changed(DOCS / "_generated" / "studies_toc.md", toc)
    suite = ""
    if (DOCS / "suite.md").exists():
        suite = (
            "`workbench suite` runs all of this in one command, with the universal heads and the "
            "universal FV: [](suite.md).\n\n```{toctree}\n:hidden:\n\nsuite\n```\n"
        )
    write_if_changed(DOCS / "_generated" / "suite_link.md", suite)


def copy_notebooks() -> None:
    """The repository's notebooks into ``docs/notebooks/`` (a build copy, not committed)."""
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        target = DOCS / "notebooks" / nb.name
        target.parent.mkdir(exist_ok=True)
        if not target.exists() or target.read_bytes() != nb.read_bytes():
            target.write_bytes(nb.read_bytes())


write_face_page()
write_optional_pages()
copy_notebooks()
