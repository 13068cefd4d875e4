"""Contrastive steering vectors on tiny random models: the vector, adding, projecting, saving, loading."""

import json

import pytest
import torch
from reference import add_after

from workbench.beyond.steering import SteeringVector, encode_texts, logit_gap, word_hits
from workbench.core.forward import last_token_logits
from workbench.core.model import model_info
from workbench.data.contrasts import ContrastFileError, list_contrasts, load_contrast
from workbench.method.vectors import FunctionVector, VectorMismatch

POS = ["I loved it, wonderful.", "Great day", "so happy today", "A lovely, lovely film."]
NEG = ["I hated it.", "Awful day, truly", "so sad", "A terrible film."]


@pytest.fixture(scope="module")
def llama(tiny):
    return tiny["llama"]


@pytest.fixture(scope="module")
def sv(llama):
    return SteeringVector.from_texts(llama, POS, NEG)


def plain_last_resid(model, text):
    """Every layer's last-position resid_post for one text, from a plain run_with_cache."""
    ids = torch.tensor(
        [[model_info(model).bos_id] + model.tokenizer(text, add_special_tokens=False)["input_ids"]]
    )
    _, cache = model.run_with_cache(ids)
    return torch.stack(
        [cache[f"blocks.{l}.hook_resid_post"][0, -1].float() for l in range(model_info(model).n_layers)]
    )


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_vector_is_difference_of_mean_residuals(tiny, arch):
    model = tiny[arch]
    sv = SteeringVector.from_texts(model, POS, NEG[:3])
    mean_pos = sum(plain_last_resid(model, t) for t in POS) / len(POS)
    mean_neg = sum(plain_last_resid(model, t) for t in NEG[:3]) / 3
    assert sv.directions.shape == (model_info(model).n_layers, model_info(model).d_model)
    assert (sv.n_positive, sv.n_negative) == (4, 3)
    torch.testing.assert_close(sv.directions, mean_pos - mean_neg, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(sv.centers, (mean_pos + mean_neg) / 2, atol=1e-4, rtol=1e-4)


def test_encode_texts_puts_bos_first_once(llama):
    enc = encode_texts(llama, ["hi there"])[0]
    bos = model_info(llama).bos_id
    assert enc.ids[0] == bos and enc.ids.count(bos) == 1
    assert list(enc.ids[1:]) == llama.tokenizer("hi there", add_special_tokens=False)["input_ids"]
    with pytest.raises(ValueError, match="no chat template"):
        encode_texts(llama, ["hi"], chat=True)


def test_adding_changes_residual_by_alpha_v_during_generation(llama, sv):
    """At every generation step, the residual after layer 0 (read where block 1 takes it in) is the
    clean one plus alpha * v from the prompt's last position on, and untouched before it."""
    alpha = 2.5
    ids = encode_texts(llama, ["hello world"])[0].ids
    first = len(ids) - 1
    seen = []

    def grab(resid, hook):
        seen.append(resid[0].detach().clone())

    with llama.hooks(fwd_hooks=[("blocks.1.hook_resid_pre", grab)]):
        steered = sv.generate(llama, "hello world", 0, alpha, max_new_tokens=4)
    assert len(seen) >= 2  # several generation steps, each with the vector
    # with the KV cache the first step holds the prompt and each later step its one new token
    assert len(seen[0]) == len(ids) and all(len(s) == 1 for s in seen[1:])
    step = torch.cat(seen)
    full = list(ids) + llama.tokenizer(steered, add_special_tokens=False)["input_ids"]
    _, cache = llama.run_with_cache(torch.tensor([full[: len(step)]]))
    clean = cache["blocks.0.hook_resid_post"][0]
    torch.testing.assert_close(step[:first], clean[:first], atol=1e-5, rtol=1e-5)
    delta = step[first:] - clean[first:]
    torch.testing.assert_close(delta, (alpha * sv.directions[0]).expand_as(delta), atol=1e-4, rtol=1e-4)


def test_add_hooks_at_last_position_only(llama, sv):
    enc = encode_texts(llama, ["some text here"])
    got = {}

    def grab(resid, hook):
        got["x"] = resid[0].clone()
        return resid

    name = "blocks.0.hook_resid_post"
    last_token_logits(llama, enc, [(name, grab)])
    base = got["x"]
    last_token_logits(llama, enc, sv.add_hooks(llama, 0, -3.0) + [(name, grab)])
    torch.testing.assert_close(got["x"][:-1], base[:-1])
    torch.testing.assert_close(got["x"][-1] - base[-1], -3.0 * sv.directions[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("from_position", [None, 2])
@pytest.mark.parametrize("centered", [False, True])
def test_project_out_removes_component(llama, sv, from_position, centered):
    enc = encode_texts(llama, ["a longer text to project", "another one here!"])
    got = {}

    def grab(resid, hook):
        got[hook.layer()] = resid.clone()
        return resid

    L = model_info(llama).n_layers
    hooks = sv.project_out_hooks(llama, from_position=from_position, centered=centered)
    last_token_logits(
        llama, enc, hooks + [(f"blocks.{l}.hook_resid_post", grab) for l in range(L)], batch_size=1
    )
    for l in range(L):
        u = sv.directions[l] / sv.directions[l].norm()
        span = got[l][:, -1:] if from_position is None else got[l][:, from_position:]
        target = float(sv.centers[l] @ u) if centered else 0.0  # centered: the midpoint's component
        assert (span @ u - target).abs().max() < 1e-4
    # without the hooks the component is there
    last_token_logits(llama, enc, [(f"blocks.{l}.hook_resid_post", grab) for l in range(L)], batch_size=1)
    assert (got[0][:, -1] @ (sv.directions[0] / sv.directions[0].norm())).abs().max() > 1e-3


def test_projected_generation_leaves_no_hooks_behind(llama, sv):
    hooks = sv.project_out_hooks(llama, layer=0)
    assert len(hooks) == model_info(llama).n_layers  # one direction, every layer
    enc = encode_texts(llama, ["hello there"])
    before = last_token_logits(llama, enc)
    projected = last_token_logits(llama, enc, hooks)
    assert not torch.allclose(before, projected)
    text = sv.generate(llama, "hello there", layer=0, project=True, max_new_tokens=3)
    # the same text from a plain greedy loop with the projection hooks at every new position
    ids = list(enc[0].ids)
    for _ in range(3):
        step = sv.project_out_hooks(llama, layer=0, from_position=len(enc[0].ids) - 1)
        ids.append(int(llama.run_with_hooks(torch.tensor([ids]), fwd_hooks=step)[0, -1].argmax()))
    assert text == llama.tokenizer.decode(ids[len(enc[0].ids) :])
    torch.testing.assert_close(last_token_logits(llama, enc), before)


def test_at_layer_is_a_function_vector(sv):
    fv = sv.at(sv.n_layers - 1)
    assert isinstance(fv, FunctionVector) and fv.layer == sv.n_layers - 1
    torch.testing.assert_close(fv.vector, sv.directions[-1])
    for layer in (sv.n_layers, -1):  # negative layers are not counted from the end
        with pytest.raises(IndexError):
            sv.at(layer)


def test_save_load_round_trip_and_mismatch(tmp_path, llama, tiny, sv):
    path = sv.save(tmp_path / "sv.safetensors")
    back = SteeringVector.load(path, model=llama)
    torch.testing.assert_close(back.directions, sv.directions)
    assert (back.model, back.positive, back.n_positive, back.chat) == (sv.model, sv.positive, 4, False)
    torch.testing.assert_close(back.centers, sv.centers)
    with pytest.raises(VectorMismatch, match="not on"):
        SteeringVector.load(path, model=tiny["gpt2"])  # same shape, another model
    other = SteeringVector(torch.zeros(2, 32), sv.model)
    other.save(tmp_path / "narrow.safetensors")
    with pytest.raises(VectorMismatch, match="d_model 32"):
        SteeringVector.load(tmp_path / "narrow.safetensors", model=llama)
    sv.at(1).save(tmp_path / "fv.safetensors")
    with pytest.raises(ValueError, match="steering_directions"):
        SteeringVector.load(tmp_path / "fv.safetensors")


def test_repr_and_html(sv):
    assert "SteeringVector('positive - negative' on tiny-llama, 4 vs 4 prompts" in repr(sv)
    html = sv._repr_html_()
    assert "<table>" in html and "4 prompts" in html and html.count("layer ") >= sv.n_layers


def test_builtin_contrasts_load():
    names = list_contrasts()
    assert {"sentiment", "sycophancy"} <= set(names)
    for n in names:
        c = load_contrast(n)
        assert len(c.positive) >= 30 and len(c.negative) >= 30 and len(c.test) >= 10
        assert not set(c.test) & (set(c.positive) | set(c.negative))


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('["a", "b"]', "expected a JSON object"),
        ('{"positive": ["a"]}', "missing the list 'negative'"),
        ('{"positive": ["a"], "negative": "b"}', "'negative' must be a list of non-empty strings"),
        ('{"positive": ["a", ""], "negative": ["b"]}', "'positive' must be a list of non-empty strings"),
        ('{"positive": ["a"], "negative": ["b"], "chat": "yes"}', "'chat' must be true or false"),
        ('{"positive": ["a"], "negative": ["b"], "score_words": {"good": ["x"]}}', "'score_words' must be"),
    ],
)
def test_loader_rejects_malformed_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ContrastFileError, match=message) as e:
        load_contrast(path)
    assert "bad.json" in str(e.value)


def test_loader_reads_a_minimal_file(tmp_path):
    path = tmp_path / "mini.json"
    path.write_text(json.dumps({"positive": ["a"], "negative": ["b"]}))
    c = load_contrast(path)
    assert (c.name, c.positive, c.negative, c.test, c.chat) == ("mini", ["a"], ["b"], [], False)
    with pytest.raises(FileNotFoundError, match="built-in ones"):
        load_contrast("no-such-contrast")


def test_word_hits_and_logit_gap(llama, sv):
    assert word_hits("It was GREAT, not bad.", ["great", "bad", "good"]) == 2
    assert word_hits("greatness", ["great"]) == 0
    enc = encode_texts(llama, ["the day was", "my film is"])
    gap = logit_gap(llama, enc, ["good", "great"], ["bad"])
    shifted = logit_gap(llama, enc, ["good", "great"], ["bad"], sv.add_hooks(llama, 1, 20.0))

    def first_tokens(words):  # each word as " word", "Word", " Word": the first token of each
        forms = [f for w in words for f in (" " + w, w.capitalize(), " " + w.capitalize())]
        return sorted({llama.tokenizer(f, add_special_tokens=False)["input_ids"][0] for f in forms})

    pos, neg = first_tokens(["good", "great"]), first_tokens(["bad"])
    for hooks, got in (([], gap), (add_after(1, 20.0 * sv.directions[1]), shifted)):
        want = []
        with torch.no_grad():
            for p in enc:  # one plain forward per prompt
                logp = (
                    llama.run_with_hooks(torch.tensor([p.ids]), fwd_hooks=hooks)[0, -1]
                    .float()
                    .log_softmax(-1)
                )
                want.append(logp[pos].mean() - logp[neg].mean())
        torch.testing.assert_close(got, torch.stack(want), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(gap, shifted)


def test_steering_figure_builds():
    from workbench.show.figures import steering_figure

    rows = {
        "alphas": [-2, 0, 2],
        "layers": [3, 6],
        "score": [[-0.5, 0.0, 0.4], [-0.2, 0.0, 0.9]],
        "projected": 0.1,
        "metric": "logit gap",
    }
    fig = steering_figure(rows, title="toy")
    assert len(fig.data) == 3  # one line per layer + the projection marker
    assert fig.data[0].name == "layer 3" and list(fig.data[1].y) == [-0.2, 0.0, 0.9]
