"""The linked head explorer: its numbers against plain computations, the CLI page, and a real click."""

import json
import re
from html.parser import HTMLParser

import pytest
import torch
from browser import chromium, click_and_read, render

from workbench.cli import main
from workbench.method.pipeline import run_task
from workbench.method.protocol import Protocol
from workbench.show.attention import head_patterns
from workbench.show.explore import Explorer, explore

SMALL = Protocol(n_shot=3, n_mean_prompts=6, n_scan_prompts=3)


@pytest.fixture(scope="module")
def run(tiny, toy_task, tmp_path_factory):
    model = tiny["llama"]
    with pytest.warns(UserWarning):  # a random model gets no valid query right: the run says so
        result = run_task(model, toy_task, SMALL, progress=False)
    folder = result.save(tmp_path_factory.mktemp("run") / "toy")
    return model, result, folder


@pytest.fixture(scope="module")
def explorer(run):
    model, result, _ = run
    return explore(result, model, others=[result.scan], top=3, progress=False)


def test_every_head_carries_its_scan_and_decoding(run, explorer):
    model, result, _ = run
    hf = model.original_model
    for l in range(2):
        for h in range(4):
            d = explorer.data["heads"][f"L{l}H{h}"]
            assert d["effects"] == pytest.approx(result.scan.effects[:, l, h].tolist(), abs=1e-5)
            assert d["aie"] == pytest.approx(float(result.scan.aie[l, h]), abs=1e-6)
            assert d["others"]["toy-capitalize"][0] == d["rank"]  # the run itself as the "other" task
            # logit lens of the head's mean output, in plain transformers: final norm, then lm_head
            with torch.no_grad():
                logits = hf.lm_head(hf.model.norm(result.means.mean_out[l, h][None, None]))[0, 0]
            want = [model.tokenizer.decode([int(i)]) for i in logits.topk(6).indices]
            assert [t for t, _ in d["decoded"]] == want
    ranks = sorted(d["rank"] for d in explorer.data["heads"].values())
    assert ranks == list(range(1, 9))
    assert explorer.data["top"] == [f"L{l}H{h}" for l, h, _ in result.scan.top_heads(3)]


def test_patterns_are_the_heads(run, explorer):
    model, result, _ = run
    for key in explorer.data["top"]:
        l, h = map(int, re.findall(r"\d+", key))
        want = head_patterns(model, explorer.prompt, [(l, h)])[0]
        torch.testing.assert_close(
            torch.tensor(explorer.data["detail"][key]["pattern"]), want, atol=1e-4, rtol=0
        )
    assert len(explorer.data["tokens"]) == len(explorer.prompt.ids)
    assert explorer.data["tokens"][-1].startswith("◆")


def zero_shot_ranks_by_hand(model, prompts, vector, layer):
    """Plain transformers: add ``vector`` to decoder layer ``layer``'s output at the last token."""
    hf = model.original_model

    def hook(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        hidden[:, -1] += vector
        return output

    handle = hf.model.layers[layer].register_forward_hook(hook)
    try:
        ranks = []
        with torch.no_grad():
            for p in prompts:
                logits = hf(torch.tensor([p.ids])).logits[0, -1]
                ranks.append(int((logits > logits[p.answer_id]).sum()))
    finally:
        handle.remove()
    return torch.tensor(ranks)


def test_add_remove_accuracy_matches_plain_transformers(run, explorer):
    model, result, _ = run
    prompts = result.prompt_sets(model)["test_zero_shot"]
    base = explorer.data["base"]
    # the run's own FV, added by hand in plain transformers
    by_hand = zero_shot_ranks_by_hand(model, prompts, result.fv.vector, result.fv_layer)
    assert base["all"] == pytest.approx(float((by_hand == 0).float().mean()))
    for key in explorer.data["top"]:
        l, h = map(int, re.findall(r"\d+", key))
        heads = explorer.toggled(l, h)
        assert ((l, h) in heads) != ((l, h) in result.fv.heads)
        vector = sum(
            (result.means.mean_out[x, y] for x, y in heads), torch.zeros(result.means.mean_out.shape[-1])
        )
        ranks = zero_shot_ranks_by_hand(model, prompts, vector, result.fv_layer)
        assert explorer.data["detail"][key]["toggled"]["all"] == pytest.approx(
            float((ranks == 0).float().mean())
        )


def test_headline_accuracy_on_a_model_that_answers_some_queries(trained, trained_run):
    model = trained[0]
    explorer = Explorer(model, trained_run, top=1, progress=False)
    prompts = trained_run.prompt_sets(model)["test_zero_shot"]
    ranks = zero_shot_ranks_by_hand(model, prompts, trained_run.fv.vector, trained_run.fv_layer)
    icl_right = trained_run.icl_correct
    assert 0 < int(icl_right.sum()) < len(icl_right)
    assert explorer.data["base"]["all"] == pytest.approx(float((ranks == 0).float().mean()))
    assert explorer.data["base"]["filtered"] == pytest.approx(float((ranks[icl_right] == 0).float().mean()))


def test_others_of_another_shape_are_refused(run):
    model, result, _ = run
    other = type(result.scan)(torch.zeros(2, 3, 4), task="elsewhere")
    with pytest.raises(ValueError, match="same model"):
        Explorer(model, result, [other], top=1, progress=False)


def test_cli_writes_one_offline_page(run, tmp_path):
    _, _, folder = run
    page = tmp_path / "page.html"
    assert main(["explore", str(folder), "--out", str(page), "--top", "2", "--others", str(folder)]) == 0
    text = page.read_text()
    scripts = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: scripts.append(dict(attrs)) if tag == "script" else None
    parser.feed(text)
    assert len(scripts) == 3 and not any(
        "src" in a for a in scripts
    )  # plotly.js, circuitsvis, the page's own
    data = json.loads(re.search(r"const D = (.*?);\nconst FIG", text, re.S).group(1).replace("NaN", "null"))
    assert len(data["detail"]) == 2 and data["others"] == ["toy-capitalize"]


@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_clicking_a_head_switches_the_attention_view(explorer, tmp_path):
    pytest.importorskip("choreographer")  # drives Chromium over the DevTools protocol (comes with kaleido)
    path = explorer.save(tmp_path / "explorer.html")
    _, requests = render(path)
    assert requests == []  # opens with no network
    first = explorer.data["top"][0]
    target = next(k for k in explorer.data["top"] if k != first)
    l, h = map(int, re.findall(r"\d+", target))
    before, after = click_and_read(
        path,
        ready="document.body.dataset.ready === '1'",
        where=f"""(() => {{ const gd = document.getElementById('aie'), fl = gd._fullLayout,
                   r = gd.getBoundingClientRect();
                   return [r.left + fl._size.l + fl.xaxis.l2p({h}),
                           r.top + fl._size.t + fl.yaxis.l2p({l})]; }})()""",
        read="""(() => { const a = document.getElementById('attention');
                 return [a.dataset.head, a.querySelector('.att-caption').textContent,
                         a.querySelectorAll('canvas').length > 0 || a.innerText.includes('Head'),
                         document.getElementById('head-title').textContent]; })()""",
    )
    assert before[0] == first and before[3] == first
    assert after[0] == target and after[1].startswith(target) and after[2] and after[3] == target


def test_live_control_re_evaluates_with_the_model(run, explorer):
    model, result, _ = run
    box = explorer.widget()
    pick, toggle, reset = box.children[1].children
    status = box.children[2]
    key = explorer.data["top"][0]
    l, h = map(int, re.findall(r"\d+", key))
    pick.value = key
    toggle.click()
    want = explorer.evaluate(explorer.toggled(l, h))
    assert ("removed" if (l, h) in result.fv.heads else "added") + f" {key}" in status.value
    assert f"{want['all']:.1%} on all {want['n']} test queries" in status.value  # no ICL-right query here
    reset.click()
    assert f"FV of {len(result.fv.heads)} heads" in status.value


def test_a_run_with_no_icl_right_query_says_so(run, explorer):
    """A random model gets no test query right with clean ICL: the page says there is nothing to filter
    on and shows all queries, instead of "zero-shot n/a -> n/a"."""
    _, result, _ = run
    assert int(result.icl_correct.sum()) == 0
    d = explorer.data
    assert "no test query that clean ICL answers right" in d["summary"] and "n/a" not in d["summary"]
    assert f"on all {d['base']['n']} test queries" in d["base_text"] and "n/a" not in d["base_text"]
    assert all("n/a" not in x["toggled_text"] for x in d["detail"].values())
    page = explorer.html()
    assert "D.summary" in page and "pct(D.zero_shot.filtered)" not in page


def test_small_effects_and_tokens_read_right(run, explorer):
    from workbench.show.style import signed, visible

    _, result, _ = run
    for d in explorer.data["heads"].values():
        assert d["aie_text"] == signed(d["aie"]) and "0.0000" not in d["aie_text"]
        assert d["decoded_shown"] == [visible(t) for t, _ in d["decoded"]]
    assert max(abs(x) for d in explorer.data["heads"].values() for x in d["effects"]) > 0
    fig = explorer.figure()  # the page's heatmap outlines the FV's own heads, and says so
    boxes = {(round((s.y0 + s.y1) / 2), round((s.x0 + s.x1) / 2)) for s in fig.layout.shapes}
    assert boxes == {tuple(h) for h in result.fv.heads}
    assert [t.name for t in fig.data if t.showlegend] == [f"outlined: the FV's {len(result.fv.heads)} heads"]
    assert list(fig.layout.yaxis.tickvals) == [0, 1]
