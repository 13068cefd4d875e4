"""Every notebook runs top to bottom (nbclient), with small parameters where it helps."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run(name: str, params: str | None, tmp_path: Path, timeout: int = 900):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        f"{name} has committed outputs"
    )
    if params is not None:
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.source = params
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    return "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )


def test_exercises_notebook_runs_and_asks_for_code(tmp_path):
    text = run("02_exercises.ipynb", None, tmp_path)
    assert text.count("not implemented yet") == 5


def test_solutions_pass_every_check(tmp_path):
    text = run("02_exercises_solutions.ipynb", None, tmp_path)
    assert text.count("✅") == 5 and "❌" not in text


def test_figures_notebook(tmp_path):
    params = (
        'MODEL = "tiny-llama"\nTASKS = ["capitalize", "choose-first-of-3"]\nOUT = '
        f'"{tmp_path}/figs"\nFRESH = True\nN_MEAN, N_SCAN = 4, 2'
    )
    run("03_paper_figures.ipynb", params, tmp_path)
    assert (tmp_path / "figs" / "tiny-llama_aie_grid.html").exists()
    assert (tmp_path / "figs" / "tiny-llama_attention.html").exists()


@pytest.mark.real_model
def test_exploration_notebook_on_embedded_model(tmp_path):
    text = run(
        "01_exploration.ipynb",
        'MODEL = "smollm2-135m"\nTASK = "capitalize"\nN_MEAN = 20\nN_SCAN = 3',
        tmp_path,
    )
    assert "HeadScan(smollm2-135m on capitalize" in text


@pytest.mark.real_model
def test_beyond_the_paper_notebook_on_embedded_model(tmp_path):
    text = run("04_beyond_the_paper.ipynb", None, tmp_path)
    assert "SoftTaskVector(" in text and "'spearman'" in text


COURSE_CHECKS = 11  # exercises in notebooks/05_course (make_notebooks.COURSE)


def test_course_notebook_runs_and_asks_for_code(tmp_path):
    params = (
        'MODEL = "tiny-llama"\nTASK = "capitalize"\nSECOND_TASK = "present-past"\nLAYER = 1\n'
        "N_MEAN, N_SCAN = 4, 2\nEXPLORE_TOP = 2"
    )
    text = run("05_course.ipynb", params, tmp_path)
    assert text.count("not implemented yet") == COURSE_CHECKS
    assert "Explorer(tiny-llama / capitalize" in text and "MinimalHeads(" in text


@pytest.mark.real_model
def test_course_solutions_pass_every_check_on_the_embedded_model(tmp_path):
    text = run("05_course_solutions.ipynb", None, tmp_path)
    assert text.count("✅") == COURSE_CHECKS and "❌" not in text
    assert "Explorer(smollm2-135m / capitalize" in text
