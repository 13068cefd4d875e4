"""A linked explorer of a run's heads: click a head on the AIE heatmap, see what it does.

For the clicked head ``(l, h)`` the view shows

- its attention pattern on one clean ICL prompt of the run (circuitsvis, the query's last token
  ``◆`` and the demonstrations' labels ``▸`` marked), and the last token's row as text;
- its per-prompt indirect effects from the scan (the AIE and its standard error);
- what its mean output decodes to: ``means.mean_out[l, h]`` (the head's mean ``hook_z`` mapped
  into the residual stream by :func:`~workbench.core.heads.head_to_residual`) through the final
  norm and the unembedding (:meth:`FunctionVector.decode`, the logit lens);
- its rank in other tasks' scans, when they are given;
- a control that adds the head to the FV (or removes it) and shows zero-shot accuracy on the
  run's test prompts: ``accuracy(test_zero_shot | + (fv ± mean_out[l, h]) after fv_layer)``,
  filtered to the queries clean ICL gets right (as ``result.accuracy``) and on all of them.

``explore(result)`` builds an :class:`Explorer`.  In Jupyter it shows the page, and (with
ipywidgets) a live control below it that re-evaluates any set of heads on the spot.
``Explorer.save(path)`` writes the page as one self-contained HTML file (plotly.js and the
circuitsvis bundle inlined, no network), with patterns and add/remove accuracies precomputed for
the ``top`` heads; every head keeps its effects, decoding and ranks.

>>> explorer = explore(wb.TaskResult.load("runs/smollm2-135m/capitalize"))  # doctest: +SKIP
>>> explorer.evaluate([(20, 5), (14, 1)])  # doctest: +SKIP
>>> explorer.save("capitalize_explorer.html")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.io as pio
import torch
from tqdm.auto import tqdm

from ..base.files import atomic_path
from ..core.hooks import add_vector
from ..core.scan import HeadScan
from ..method.evaluate import accuracy
from ..method.result import TaskResult
from ..method.vectors import FunctionVector
from .attention import _token_strings, circuitsvis_bundle, head_patterns, label_positions
from .figures import aie_heatmap
from .style import number, signed, visible

__all__ = ["Explorer", "explore", "head_key"]

Head = tuple[int, int]


def head_key(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def _ranks(scan_or_result: TaskResult | HeadScan) -> tuple[str, torch.Tensor, torch.Tensor]:
    """(task name, ``[layer, head]`` rank (1 = largest AIE), ``[layer, head]`` AIE) of another run."""
    scan = scan_or_result.scan if isinstance(scan_or_result, TaskResult) else scan_or_result
    name = scan_or_result.task.name if isinstance(scan_or_result, TaskResult) else (scan.task or "other")
    aie = scan.aie.float()
    order = torch.nan_to_num(aie, nan=-float("inf")).flatten().argsort(descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(1, order.numel() + 1)
    return name, rank.view(aie.shape), aie


class Explorer:
    """The data of the linked view of one run, and the model to compute more of it live.

    ``data`` is plain JSON (what the page draws); :meth:`evaluate` and :meth:`head_panel` run
    the model for any head or head set.
    """

    def __init__(
        self,
        model,
        result: TaskResult,
        others: Sequence[TaskResult | HeadScan] = (),
        top: int = 16,
        precompute: bool = True,
        progress: bool = True,
    ):
        result.check_model(model)
        result.check_same_model(others)
        self.model, self.result = model, result
        self.sets = result.prompt_sets(model)
        self.prompt = self.sets["attention_example"][0]
        L, H = result.scan.aie.shape
        if result.means.mean_out.shape[:2] != (L, H):
            raise ValueError(f"the run's means {tuple(result.means.mean_out.shape)} do not fit its scan")
        for other in others:
            if _ranks(other)[1].shape != (L, H):
                raise ValueError(
                    f"{_ranks(other)[0]!r} has an AIE map of shape {tuple(_ranks(other)[1].shape)}, this run "
                    f"{(L, H)}: other tasks must come from the same model"
                )
        self.top = [(l, h) for l, h, _ in result.scan.top_heads(top)]
        self.data = self._build(others, precompute, progress)

    # --- live computations ------------------------------------------------------------------
    def evaluate(self, heads: Sequence[Head]) -> dict[str, float | int]:
        """Zero-shot test accuracy with the FV of ``heads`` (sum of their ``mean_out``) added after
        the run's FV layer: top-1 on the queries clean ICL gets right, and on all test queries."""
        result = self.result
        vec = FunctionVector.from_heads(result.means, heads, self.model).vector
        prompts = self.sets["test_zero_shot"]
        hooks = add_vector(self.model, result.fv_layer, vec, result.protocol.alpha) if heads else None
        ranks = accuracy(self.model, prompts, hooks).ranks
        right = result.icl_correct
        filtered = ranks[right] if right.numel() == ranks.numel() else ranks
        top1 = lambda r: float((r == 0).float().mean()) if r.numel() else float("nan")
        return {
            "filtered": top1(filtered),
            "n_filtered": int(filtered.numel()),
            "all": top1(ranks),
            "n": len(ranks),
        }

    def toggled(self, layer: int, head: int) -> list[Head]:
        """The run's FV heads with ``(layer, head)`` removed if it is one of them, added if not."""
        heads = list(self.result.fv.heads)
        return [x for x in heads if x != (layer, head)] if (layer, head) in heads else heads + [(layer, head)]

    def pattern(self, layer: int, head: int) -> list[list[float]]:
        """The head's attention pattern ``[query, key]`` on the run's attention example."""
        return [
            [round(v, 4) for v in row]
            for row in head_patterns(self.model, self.prompt, [(layer, head)])[0].tolist()
        ]

    def decoded(self, layer: int, head: int, k: int = 8) -> list[tuple[str, float]]:
        """The head's mean residual output through the logit lens (its top ``k`` tokens)."""
        fv = FunctionVector.from_heads(self.result.means, [(layer, head)], self.model)
        return [(t, round(v, 3)) for t, v in fv.decode(self.model, k)]

    def head_panel(self, layer: int, head: int):
        """Any head, computed now: its attention view on the run's example prompt (circuitsvis), with
        its AIE and decoded mean output in the caption."""
        from .attention import attention_view

        d = self.data["heads"][head_key(layer, head)]
        words = ", ".join(visible(t) for t, _ in d["decoded"][:5])
        caption = (
            f"{head_key(layer, head)}: AIE {d['aie_text']} ± {d['sem_text']}, rank {d['rank']}; "
            f"decodes to {words}"
        )
        return attention_view(self.model, self.prompt, [(layer, head)], caption)

    # --- the page's data --------------------------------------------------------------------
    def _build(self, others, precompute: bool, progress: bool) -> dict[str, Any]:
        result, scan = self.result, self.result.scan
        L, H = scan.aie.shape
        _, rank, _ = _ranks(scan)
        other = [_ranks(o) for o in others]
        heads = {}
        fv_heads = [tuple(x) for x in result.fv.heads]
        for l in tqdm(range(L), desc="explorer: every head", disable=not progress, leave=False):
            for h in range(H):
                aie, sem = float(torch.nan_to_num(scan.aie[l, h])), float(torch.nan_to_num(scan.sem[l, h]))
                decoded = self.decoded(l, h, 6)
                heads[head_key(l, h)] = {
                    "layer": l,
                    "head": h,
                    "aie": aie,
                    "sem": sem,
                    "aie_text": signed(aie),
                    "sem_text": number(sem),
                    "effects": [float(f"{x:.6g}") for x in torch.nan_to_num(scan.effects[:, l, h]).tolist()],
                    "rank": int(rank[l, h]),
                    "decoded": decoded,
                    "decoded_shown": [visible(t) for t, _ in decoded],
                    "others": {
                        name: [int(r[l, h]), float(torch.nan_to_num(a[l, h])), signed(float(a[l, h]))]
                        for name, r, a in other
                    },
                    "in_fv": (l, h) in fv_heads,
                }
        base = self.evaluate(fv_heads)
        detail = {}
        if precompute:
            for l, h in tqdm(self.top, desc="explorer: top heads", disable=not progress, leave=False):
                toggled = self.evaluate(self.toggled(l, h))
                detail[head_key(l, h)] = {
                    "pattern": self.pattern(l, h),
                    "toggled": toggled,
                    "toggled_text": accuracy_text(toggled),
                }
        acc = result.accuracy
        zero_shot = {"filtered": acc["zero_shot"].top1, "all": result.accuracy_unfiltered["zero_shot"].top1}
        return {
            "model": result.model,
            "task": result.task.name,
            "n_layers": L,
            "n_heads": H,
            "n_scan_prompts": scan.n_prompts,
            "fv_heads": [head_key(l, h) for l, h in fv_heads],
            "fv_layer": result.fv_layer,
            "top": [head_key(l, h) for l, h in self.top],
            "tokens": _token_strings(self.model, self.prompt, label_positions(self.model, self.prompt)),
            "heads": heads,
            "detail": detail,
            "base": base,
            "base_text": accuracy_text(base),
            "summary": _summary(L, H, scan.n_prompts, fv_heads, result.fv_layer, zero_shot, base),
            "zero_shot": zero_shot,
            "saved_zero_shot_fv": acc["zero_shot_fv"].top1,
            "baselines": result.baselines.to_dict(),
            "centered": bool(result.protocol.center),
            "others": [name for name, _, _ in other],
        }

    # --- showing it -------------------------------------------------------------------------
    def figure(self):
        """The AIE heatmap of the page (FV heads outlined)."""
        fig = aie_heatmap(self.result.scan, heads=self.result.fv)
        fig.update_layout(
            title=f"{self.result.task.name}: AIE per head (click one)", width=None, height=None, autosize=True
        )
        return fig

    def html(self) -> str:
        """The whole explorer as one self-contained page (no network)."""
        import plotly

        plotly_js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(
            encoding="utf-8"
        )
        data = json.dumps(self.data).replace("</", "<\\/")
        title = html.escape(f"FV head explorer: {self.data['model']} / {self.data['task']}")
        return (
            _PAGE.replace("__TITLE__", title)
            .replace("__PLOTLY__", plotly_js.replace("</script>", "<\\/script>"))
            .replace("__CIRCUITSVIS__", circuitsvis_bundle())
            .replace("__FIGURE__", pio.to_json(self.figure()).replace("</", "<\\/"))
            .replace("__DATA__", data)
        )

    def save(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            tmp.write_text(self.html(), encoding="utf-8")
        return Path(path)

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{html.escape(self.html(), quote=True)}" '
            "style='width:100%; height:980px; border:0'></iframe>"
        )

    def __repr__(self) -> str:
        d = self.data
        return (
            f"Explorer({d['model']} / {d['task']}: {d['n_layers']}x{d['n_heads']} heads, FV of "
            f"{len(d['fv_heads'])} after layer {d['fv_layer']}, {len(d['detail'])} heads precomputed; "
            f"zero-shot + FV {d['base']['filtered']:.0%} (filtered, n={d['base']['n_filtered']}))"
        )

    def widget(self):
        """The page with a live control below it (ipywidgets): pick heads, add or remove them from
        the FV, and re-evaluate zero-shot accuracy with the model."""
        import ipywidgets as w

        names = sorted(self.data["heads"], key=lambda k: -self.data["heads"][k]["aie"])
        current = set(self.data["fv_heads"])
        pick = w.Dropdown(
            options=[(f"{k} (AIE {self.data['heads'][k]['aie_text']})", k) for k in names],
            description="head",
        )
        toggle = w.Button(description="add to / remove from FV")
        reset = w.Button(description="reset to the run's FV")
        status = w.HTML()

        def show(note: str = "") -> None:
            heads = [(self.data["heads"][k]["layer"], self.data["heads"][k]["head"]) for k in sorted(current)]
            acc = self.evaluate(heads)
            status.value = (
                f"{note}<b>FV of {len(heads)} heads</b> [{', '.join(sorted(current))}] after layer "
                f"{self.data['fv_layer']}: {accuracy_text(acc)}"
            )

        def on_toggle(_):
            key = pick.value
            (current.discard if key in current else current.add)(key)
            show(f"{'added' if key in current else 'removed'} {key}. ")

        def on_reset(_):
            current.clear()
            current.update(self.data["fv_heads"])
            show("reset. ")

        toggle.on_click(on_toggle)
        reset.on_click(on_reset)
        show()
        return w.VBox([w.HTML(self._repr_html_()), w.HBox([pick, toggle, reset]), status])

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        try:
            display(self.widget())
        except ImportError:  # no ipywidgets: the page alone (its control shows precomputed accuracies)
            display(HTML(self._repr_html_()))


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{x:.1%}"


def accuracy_text(acc: dict[str, float | int]) -> str:
    """One sentence for an :meth:`Explorer.evaluate` outcome; says so when no query is left to filter on."""
    if acc["n_filtered"] == 0:
        return (
            f"zero-shot + FV {_pct(acc['all'])} on all {acc['n']} test queries (no test query that clean "
            "ICL answers right: nothing to filter on)"
        )
    return (
        f"zero-shot + FV {_pct(acc['filtered'])} on the {acc['n_filtered']} test queries ICL gets right "
        f"({_pct(acc['all'])} of all {acc['n']})"
    )


def _summary(L: int, H: int, n_scan: int, fv_heads, fv_layer: int, zero_shot: dict, base: dict) -> str:
    """The page's first line: the model's size, the FV, and zero-shot accuracy without and with it."""
    names = ", ".join(head_key(l, h) for l, h in fv_heads)
    fv = f"FV of {len(fv_heads)} heads [{names}] after layer {fv_layer}"
    if base["n_filtered"] == 0:
        result = (
            f"no test query that clean ICL answers right, so nothing to filter on; on all {base['n']} test "
            f"queries, zero-shot {_pct(zero_shot['all'])} -> {_pct(base['all'])} with the FV"
        )
    else:
        result = (
            f"zero-shot {_pct(zero_shot['filtered'])} -> {_pct(base['filtered'])} with the FV (test "
            f"queries ICL gets right, n={base['n_filtered']})"
        )
    return f"{L} layers x {H} heads, {n_scan} scan prompts. {fv}: {result}."


def explore(
    result: TaskResult | str | Path,
    model=None,
    others: Sequence[TaskResult | HeadScan | str | Path] = (),
    top: int = 16,
    precompute: bool = True,
    progress: bool = True,
    device: str = "cpu",
) -> Explorer:
    """The linked explorer of ``result`` (a TaskResult or its folder).

    model: the run's model, or a name or path to load it by (default: the run's model name);
    others: other runs (or their folders, or HeadScans) of the same model whose ranks of each head
    are shown; top:
    how many heads by AIE get their pattern and add/remove accuracy precomputed for the page.
    """
    if not isinstance(result, TaskResult):
        result = TaskResult.load(result)
    others = [o if isinstance(o, TaskResult | HeadScan) else TaskResult.load(o) for o in others]
    if model is None or isinstance(model, str | Path):
        from ..core.loading import load_model

        model = load_model(str(model or result.model), device=device, verbose=False)
    return Explorer(model, result, others, top=top, precompute=precompute, progress=progress)


_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 12px; color: #222; }
#wrap { display: flex; gap: 18px; align-items: flex-start; }
#left { flex: 0 0 430px; } #right { flex: 1 1 auto; min-width: 420px; }
#aie { width: 430px; height: 640px; }
h2 { margin: 4px 0 8px 0; font-size: 20px; } h3 { margin: 12px 0 4px 0; font-size: 15px; }
.muted { color: #777; font-size: 12px; } table { border-collapse: collapse; font-size: 13px; }
td, th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; }
#lastrow span { display: inline-block; padding: 1px 0; white-space: pre; font-family: monospace;
  font-size: 12px; }
#control button { font-size: 14px; padding: 4px 10px; }
.row { display: flex; gap: 22px; align-items: flex-start; flex-wrap: wrap; }
#lastrow { line-height: 1.7; max-width: 980px; }
.tag { display: inline-block; padding: 1px 6px; border-radius: 4px; background: #eee; font-size: 12px; }
</style>
<script>__PLOTLY__</script>
<script>__CIRCUITSVIS__</script>
</head><body>
<h2>__TITLE__</h2>
<div class="muted" id="summary"></div>
<div id="wrap">
 <div id="left"><div id="aie"></div>
  <div class="muted">Outlined: the FV's heads. Click any cell. Patterns and the add/remove control are
  precomputed for the top heads by AIE (listed below); every head has its effects, decoding and ranks.</div>
  <div id="toplist"></div></div>
 <div id="right">
  <h2 id="head-title"></h2><div id="head-facts"></div>
  <div id="control"></div>
  <div class="row">
   <div><h3>Indirect effect on each scan prompt</h3>
    <div id="effects" style="width:430px;height:220px"></div></div>
   <div><h3>Its mean output, decoded <span class="muted">(logit lens)</span></h3>
    <div id="decoded"></div></div>
   <div><h3>Its rank in other tasks</h3><div id="ranks"></div></div>
  </div>
  <h3>Where the query's last token ◆ looks
   <span class="muted">(this head, on a clean ICL prompt; ▸ first token of each label)</span></h3>
  <div id="lastrow"></div>
  <h3>Its attention pattern on that prompt <span class="muted">(circuitsvis)</span></h3>
  <div id="attention"></div>
 </div>
</div>
<script>
const D = __DATA__;
const FIG = __FIGURE__;
const gd = document.getElementById('aie');
const esc = s => String(s).replace(/[&<>"]/g,
  c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
const pct = x => (x == null || Number.isNaN(x)) ? 'n/a' : `${(100 * x).toFixed(1)}%`;  // as _pct
let cv = 0, selected = null, toggledOn = false;
document.getElementById('summary').textContent = D.summary +
  ` Baselines of the test answers: majority label ${pct(D.baselines.majority)}, ` +
  `chance ${pct(D.baselines.chance)}.` +
  (D.centered ? ' (The run centred its FV; this page adds and removes uncentred head terms.)' : '');
document.getElementById('toplist').innerHTML = '<h3>Top heads</h3>' + D.top.map(k =>
  `<button class="pick" data-head="${k}">${k}</button>`).join(' ');
document.querySelectorAll('button.pick').forEach(b => b.onclick = () => select(b.dataset.head));

function attention(key) {
  const box = document.getElementById('attention'), row = document.getElementById('lastrow');
  box.innerHTML = ''; row.innerHTML = ''; box.dataset.head = key;
  const det = D.detail[key];
  if (!det) {
    box.innerHTML = `<p class="muted">Not precomputed for ${key} (only the top ${D.top.length} heads are). ` +
      'In Jupyter: <code>explorer.head_panel(layer, head)</code>.</p>';
    return;
  }
  const cap = document.createElement('div');
  cap.className = 'att-caption'; cap.textContent = `${key}, attention pattern`;
  const div = document.createElement('div'); div.id = 'cv-' + (cv++);
  box.append(cap, div);
  CircuitsVis.render(div.id, CircuitsVis.AttentionHeads,
    {attention: [det.pattern], tokens: D.tokens, attentionHeadNames: [key]});
  const last = det.pattern[det.pattern.length - 1], mx = Math.max(...last);
  row.innerHTML = D.tokens.map((t, i) =>
    `<span title="${last[i].toFixed(3)}" style="background: rgba(196,78,82,${(last[i] / mx).toFixed(3)})">` +
    `${esc(t.replace(/\\n/g, '↵'))}</span>`).join('');
}

function control(key) {
  const c = document.getElementById('control'), det = D.detail[key], inFv = D.heads[key].in_fv;
  if (!det) {
    c.innerHTML = '<p class="muted">Add/remove: precomputed for the top heads only (live in Jupyter).</p>';
    return;
  }
  toggledOn = false;
  const verb = inFv ? `remove ${key} from the FV` : `add ${key} to the FV`;
  c.innerHTML = `<button id="toggle">${verb}</button> <span id="toggle-result"></span>`;
  const show = () => {
    const tag = toggledOn ? `<span class="tag">${inFv ? 'without' : 'with'} ${key}</span> ` : '';
    document.getElementById('toggle-result').innerHTML = tag +
      esc(toggledOn ? det.toggled_text : D.base_text) +
      (toggledOn ? ` — the run's FV: ${esc(D.base_text)}` : '');
    document.getElementById('toggle').textContent = toggledOn ? 'undo' : verb;
  };
  document.getElementById('toggle').onclick = () => { toggledOn = !toggledOn; show(); };
  show();
}

function select(key) {
  const d = D.heads[key]; if (!d) return;
  selected = key;
  document.getElementById('head-title').textContent = key;
  document.getElementById('head-facts').innerHTML =
    `AIE <b>${esc(d.aie_text)}</b> ± ${esc(d.sem_text)} (s.e.), ` +
    `rank ${d.rank} of ${D.n_layers * D.n_heads}` +
    (d.in_fv ? ' <span class="tag">in the FV</span>' : '');
  attention(key); control(key);
  Plotly.react('effects', [
    {type: 'bar', x: d.effects.map((_, i) => i), y: d.effects, name: 'per prompt',
     marker: {color: '#8C8C8C'}},
    {type: 'scatter', mode: 'markers', x: [d.effects.length], y: [d.aie], name: 'AIE ± s.e.',
     error_y: {type: 'data', array: [d.sem], visible: true}, marker: {color: '#C44E52', size: 9}}],
    {margin: {l: 60, r: 10, t: 10, b: 45}, xaxis: {title: 'scan prompt (last: AIE)'},
     yaxis: {title: 'P patched - P corrupted'}, showlegend: false, template: 'simple_white'},
    {displayModeBar: false});
  document.getElementById('decoded').innerHTML = '<table><tr><th>token</th><th>logit</th></tr>' +
    d.decoded.map(([t, v], i) =>
      `<tr><td><code>${esc(d.decoded_shown[i])}</code></td><td>${v.toFixed(2)}</td></tr>`).join('') +
    '</table>';
  const names = Object.keys(d.others);
  document.getElementById('ranks').innerHTML = names.length ?
    '<table><tr><th>task</th><th>rank</th><th>AIE</th></tr>' + names.map(n =>
      `<tr><td>${esc(n)}</td><td>${d.others[n][0]}</td><td>${esc(d.others[n][2])}</td></tr>`
    ).join('') + '</table>' :
    '<p class="muted">No other tasks given (<code>workbench explore RUN --others RUN2 ...</code>).</p>';
  const shapes = (FIG.layout.shapes || []).concat([{type: 'rect', x0: d.head - 0.5, x1: d.head + 0.5,
    y0: d.layer - 0.5, y1: d.layer + 0.5, line: {color: '#2ca02c', width: 4}, fillcolor: 'rgba(0,0,0,0)'}]);
  Plotly.relayout(gd, {shapes: shapes});
}

Plotly.newPlot(gd, FIG.data, Object.assign({}, FIG.layout, {width: 430, height: 640}),
               {displayModeBar: false})
  .then(() => {
    gd.on('plotly_click', ev => { const p = ev.points[0]; select(`L${p.y}H${p.x}`); });
    select(D.top[0]);
    document.body.dataset.ready = '1';
  });
</script>
</body></html>
"""
