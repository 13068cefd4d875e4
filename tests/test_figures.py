import importlib

import pytest
import torch
from browser import chromium, render

from workbench.core.scan import HeadScan
from workbench.method.evaluate import Accuracy, LayerSweep
from workbench.show import figures


def scan():
    g = torch.Generator().manual_seed(0)
    return HeadScan(torch.randn(5, 4, 3, generator=g) * 0.01, model="m", task="t")


def test_heatmap_outlines_the_top_heads():
    s = scan()
    fig = figures.aie_heatmap(s, top_k=3)
    boxes = {(round((sh.y0 + sh.y1) / 2), round((sh.x0 + sh.x1) / 2)) for sh in fig.layout.shapes}
    assert boxes == {(l, h) for l, h, _ in s.top_heads(3)}
    assert "s.e." in fig.data[0].hovertemplate
    grid = figures.aie_grid({"a": s, "b": scan()}, top_k=2)
    assert len(grid.data) == 3  # two tasks and the universal mean


def test_sweep_and_comparison_figures():
    acc = lambda p: Accuracy(torch.tensor([0] * p + [5] * (10 - p)))  # noqa: E731
    sweep = LayerSweep([0, 1, 2], {"zero_shot": [acc(1), acc(6), acc(3)]}, {"zero_shot": acc(0)})
    fig = figures.layer_sweep_figure(sweep, {"mean state": sweep})
    assert list(fig.data[0].y) == pytest.approx([0.1, 0.6, 0.3]) and fig.data[0].error_y.array[
        1
    ] == pytest.approx((0.24 / 10) ** 0.5)
    from types import SimpleNamespace

    rows = [
        SimpleNamespace(
            model="m", task=SimpleNamespace(name=t), accuracy={c: acc(p) for c in figures.CONDITION_LABELS}
        )
        for t, p in (("a", 2), ("b", 6))
    ]
    fig = figures.accuracy_comparison(rows)
    assert list(fig.data[0].x) == ["a", "b", "mean"] and list(fig.data[0].y) == pytest.approx([0.2, 0.6, 0.4])
    assert figures.decoded_figure([("a", 2.0), ("b", 1.0)]).data[0].y[-1] == "a"


def test_export_html_opens_offline(tmp_path):
    paths = figures.export(figures.aie_heatmap(scan()), "heat", tmp_path, formats=("html",))
    text = paths[0].read_text()
    assert "cdn.plot.ly" not in text.split("<body>")[-1][:2000]
    if chromium():
        dom, requests = render(paths[0])
        assert requests == [] and "main-svg" in dom


def test_export_without_browser_still_writes_html(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(importlib.import_module("workbench.show.figures.export"), "_browser", lambda: None)
    paths = figures.export(figures.aie_heatmap(scan()), "heat", tmp_path)
    assert [p.suffix for p in paths] == [".html"]
    assert "no Chromium found" in capsys.readouterr().err


@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_static_export(tmp_path):
    paths = figures.export(figures.aie_heatmap(scan()), "heat", tmp_path, formats=("png", "pdf"))
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"
