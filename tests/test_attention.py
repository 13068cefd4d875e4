import pytest
import torch
from browser import chromium, render

from workbench.data.prompts import encode_prompts, sample_prompts
from workbench.data.tasks import load_task
from workbench.show.attention import AttentionPage, attention_view, head_patterns, label_positions


@pytest.fixture(scope="module")
def prompt(tiny):
    model = tiny["llama"]
    enc, _ = encode_prompts(model.tokenizer, sample_prompts(load_task("antonym").split(0), 1, 3), 0)
    return enc[0]


def test_patterns_are_the_hook_pattern(tiny, prompt):
    model = tiny["llama"]
    pats = head_patterns(model, prompt, [(1, 2), (0, 1)])
    _, cache = model.run_with_cache(torch.tensor([prompt.ids]))
    torch.testing.assert_close(pats[0], cache["blocks.1.attn.hook_pattern"][0, 2])
    torch.testing.assert_close(pats[1], cache["blocks.0.attn.hook_pattern"][0, 1])
    torch.testing.assert_close(pats.sum(-1), torch.ones(2, len(prompt.ids)))


def test_label_and_query_marks(tiny, prompt):
    marks = label_positions(tiny["llama"], prompt)
    assert marks[len(prompt.ids) - 1] == "◆"
    assert sum(1 for m in marks.values() if m == "▸") == len(prompt.prompt.demos)
    tok = tiny["llama"].tokenizer
    for pos, m in marks.items():
        if m == "▸":  # the marked token starts a demonstration label
            assert any(tok.decode([prompt.ids[pos]]).strip() == d.output[0] for d in prompt.prompt.demos)


def test_page_inlines_bundle_once(tiny, prompt, tmp_path):
    page = attention_view(tiny["llama"], prompt, [(1, 2)], "top head")
    attention_view(tiny["llama"], prompt, [(0, 0)], "random head", page=page)
    text = page.html()
    assert text.count("CircuitsVis.render(") == 2
    assert "unpkg.com" not in text and "cdn.jsdelivr" not in text
    assert len(text) < 2 * len(AttentionPage().html())  # one bundle, not two


@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_page_renders_offline_in_chromium(tiny, prompt, tmp_path):
    page = attention_view(tiny["llama"], prompt, [(1, 2), (0, 1)], "top heads")
    path = page.save(tmp_path / "attention.html")
    dom, requests = render(path)
    assert requests == []  # no network request of any kind
    assert dom.count("<canvas") >= 1  # circuitsvis drew the heads


@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_the_network_check_can_fail(tmp_path):
    page = tmp_path / "leaky.html"
    page.write_text('<html><body><img src="http://example.invalid/pixel.png"></body></html>')
    _, requests = render(page)
    assert any("example.invalid" in r for r in requests)
