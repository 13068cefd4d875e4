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
    assert [t.type for t in grid.data].count("heatmap") == 3  # two tasks and the universal mean


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
    one = figures.accuracy_comparison(rows[:1])
    assert list(one.data[0].x) == ["a"] and list(one.data[0].y) == pytest.approx([0.2])  # no "mean" of one
    assert not one.layout.annotations
    for r, p in zip(rows, (5, 1)):
        r.answer_accuracy = {c: acc(p) for c in figures.CONDITION_LABELS}
    whole = figures.accuracy_comparison(rows, key="answer_accuracy")
    assert list(whole.data[0].y) == pytest.approx([0.5, 0.1, 0.3])
    assert "whole-answer" in whole.layout.title.text
    rows[1].answer_accuracy = None  # a run saved before whole answers were scored
    with pytest.raises(ValueError, match="b hold no whole-answer scores"):
        figures.accuracy_comparison(rows, key="answer_accuracy")
    with pytest.raises(ValueError, match="key must be one of"):
        figures.accuracy_comparison(rows, key="acuracy")
    decoded = figures.decoded_figure([("a", 2.0), ("b", 1.0)])
    assert decoded.layout.yaxis.ticktext[-1] == "a" and list(decoded.data[0].x) == [1.0, 2.0]


def outlined(fig):
    return {(round((sh.y0 + sh.y1) / 2), round((sh.x0 + sh.x1) / 2)) for sh in fig.layout.shapes}


def legend(fig):
    return [t.name for t in fig.data if t.showlegend]


def test_heatmap_outlines_the_fvs_own_heads():
    from types import SimpleNamespace

    s = scan()
    top = {(l, h) for l, h, _ in s.top_heads(2)}
    fv_heads = [(l, h) for l in range(5) for h in range(4) if (l, h) not in top][:2]
    fv = SimpleNamespace(heads=fv_heads)
    for fig in (
        figures.aie_heatmap(s, heads=fv),
        figures.aie_heatmap(s, heads=fv_heads),
        figures.aie_heatmap(SimpleNamespace(scan=s, fv=fv)),  # a TaskResult: its scan and its FV
    ):
        assert outlined(fig) == set(fv_heads)
        assert legend(fig) == ["outlined: the FV's 2 heads"]
    assert legend(figures.aie_heatmap(s, top_k=3)) == ["outlined: the top 3 heads by AIE"]


def test_layer_and_head_axes_have_integer_ticks():
    tiny = HeadScan(torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(1)) * 1e-6)
    fig = figures.aie_heatmap(tiny)
    assert fig.layout.yaxis.tickmode == "array" and list(fig.layout.yaxis.tickvals) == [0, 1]
    assert list(fig.layout.xaxis.tickvals) == [0, 1, 2, 3]
    grid = figures.aie_grid({"a": tiny, "b": tiny})
    assert all(list(grid.layout[ax].tickvals) == [0, 1] for ax in grid.layout if ax.startswith("yaxis"))
    acc = Accuracy(torch.tensor([0, 3]))
    sweep = LayerSweep([0, 1], {"zero_shot": [acc, acc]}, {"zero_shot": acc})
    assert list(figures.layer_sweep_figure(sweep).layout.xaxis.tickvals) == [0, 1]
    counts = figures.head_count_figure({"zero_shot": {1: 0.5, 2: 0.5, 4: 0.75}})
    assert list(counts.layout.xaxis.tickvals) == [1, 2, 4]
    soft = figures.soft_alpha_figure(torch.rand(2, 4), tiny)
    assert list(soft.layout.yaxis2.tickvals) == [0, 1]


def test_small_effects_show_significant_digits():
    from workbench.show import style

    assert ".3~g" in figures.aie_heatmap(scan()).data[0].hovertemplate
    assert style.number(3.14159e-6) == "3.1e-06" and style.signed(-4e-8) == "-4e-08"
    assert style.number(-0.0) == "0" and style.signed(0.0) == "0" and style.number(float("nan")) == "n/a"
    assert style.signed(0.1234) == "+0.12"


def test_missing_data_gets_a_sentence():
    from types import SimpleNamespace

    none = Accuracy(torch.tensor([], dtype=torch.long))
    row = SimpleNamespace(
        model="m", task=SimpleNamespace(name="a"), accuracy={c: none for c in figures.CONDITION_LABELS}
    )
    fig = figures.accuracy_comparison([row])
    assert [a.text for a in fig.layout.annotations] == [
        "no test query that clean ICL answers right: nothing to filter on (see the unfiltered figure)"
    ]
    zero = Accuracy(torch.tensor([3, 5]))
    sweep = LayerSweep([0, 1], {"zero_shot": [zero, zero]}, {"zero_shot": zero})
    notes = [a.text for a in figures.layer_sweep_figure(sweep).layout.annotations]
    assert notes == ["every point is 0: no test query is answered right at any layer"]
    empty = LayerSweep([0, 1], {"zero_shot": [none, none]}, {})
    assert "missing" in figures.layer_sweep_figure(empty).layout.annotations[0].text


def test_decoded_tokens_show_their_whitespace():
    fig = figures.decoded_figure([(" \n", 3.0), ("\n", 2.0), (" cold", 1.0), ("\t", 0.5)])
    assert list(fig.layout.yaxis.ticktext) == ["⇥", "␣cold", "↵", "␣↵"]
    assert len(set(fig.data[0].y)) == 4  # one bar per token, even where two labels looked alike


def test_composition_says_which_tasks_it_adds():
    from workbench.cli import build_parser
    from workbench.show.report import composition_extra_tasks

    assert composition_extra_tasks(["antonym", "capitalize"]) == [
        "choose-first-of-3",
        "first-item-capitalize",
        "choose-last-of-3",
        "uppercase",
        "last-item-uppercase",
    ]
    figs = build_parser()._subparsers._group_actions[0].choices["figures"]
    assert "composed tasks" in figs.format_help()


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


def test_figures_command_says_before_it_runs_composition_tasks(monkeypatch, capsys, tmp_path):
    from types import SimpleNamespace

    from workbench.show import report

    monkeypatch.setattr(report, "run_task", lambda model, task, protocol, **kw: SimpleNamespace(task=task))
    for name in ("overview_figures", "featured_figures", "attribution_figure", "composition_figure"):
        monkeypatch.setattr(report, name, lambda *a, **k: {})
    monkeypatch.setattr(report, "attention_page", lambda *a: None)
    monkeypatch.setattr(report, "_Writer", lambda *a: SimpleNamespace(name="m", out_dir=tmp_path, written={}))
    report.paper_figures(None, ["antonym"], tmp_path, composition_tasks=True)
    err = capsys.readouterr().err
    assert "composition figure: running 6 more tasks (choose-first-of-3, capitalize," in err
    assert "--no-composition" in err
    report.paper_figures(None, ["antonym"], tmp_path, composition_tasks=False)
    assert "composition" not in capsys.readouterr().err
