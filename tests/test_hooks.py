import torch
from reference import patch_heads

from workbench.core.forward import last_token_logits
from workbench.core.hooks import add_vector, generate, mean_ablate_heads, project_out, replace_last_state
from workbench.data.prompts import encode_prompts, sample_prompts


def capture(model, layer):
    store = {}

    def hook(act, hook):
        store["resid"] = act.clone()
        return act

    return store, (f"blocks.{layer}.hook_resid_post", hook)


def test_add_vector_touches_only_the_last_position(tiny):
    model = tiny["llama"]
    ids = torch.randint(3, 300, (1, 9))
    v = torch.randn(64)
    clean, cap = capture(model, 0)
    model.run_with_hooks(ids, fwd_hooks=[cap])
    steered, cap2 = capture(model, 0)
    model.run_with_hooks(ids, fwd_hooks=add_vector(model, 0, v, alpha=2.0) + [cap2])
    diff = steered["resid"] - clean["resid"]
    torch.testing.assert_close(diff[0, -1], 2.0 * v, atol=1e-5, rtol=1e-5)
    assert diff[0, :-1].abs().max() == 0


def test_replace_and_project(tiny, toy_task):
    model = tiny["llama"]
    prompts, _ = encode_prompts(model.tokenizer, sample_prompts(toy_task.split(0), 4, 2), 0)
    states = torch.randn(4, 64)
    seen = torch.zeros(4, 64)

    def factory(idx):
        def grab(act, hook):
            seen[list(idx)] = act[:, -1].float()
            return act

        return replace_last_state(model, 1, states)(idx) + [("blocks.1.hook_resid_post", grab)]

    last_token_logits(model, prompts, factory)
    torch.testing.assert_close(seen, states)
    u = torch.randn(64)
    before, cap = capture(model, 1)
    model.run_with_hooks(torch.tensor([prompts[0].ids]), fwd_hooks=[cap])
    x = before["resid"].clone()
    out, cap = capture(model, 1)
    model.run_with_hooks(torch.tensor([prompts[0].ids]), fwd_hooks=project_out(model, u, [1]) + [cap])
    assert abs(float(out["resid"][0, -1] @ u)) < 1e-3
    unit = u / u.norm()  # the component along u is gone, the rest of the state is kept as it was
    want = x[0, -1] - (x[0, -1] @ unit) * unit
    torch.testing.assert_close(out["resid"][0, -1], want, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["resid"][0, :-1], x[0, :-1])  # earlier positions untouched


def test_mean_ablation_matches_plain_hooks(tiny, toy_task):
    model = tiny["llama"]
    prompts, _ = encode_prompts(model.tokenizer, sample_prompts(toy_task.split(0), 3, 2), 0)
    heads, mean_z = [(0, 1), (1, 2)], torch.randn(2, 4, 16)
    base = last_token_logits(model, prompts)
    ablated = last_token_logits(model, prompts, mean_ablate_heads(model, heads, mean_z))
    with torch.no_grad():  # one plain forward per prompt, the heads' last-position z overwritten
        want = torch.stack(
            [
                model.run_with_hooks(torch.tensor([p.ids]), fwd_hooks=patch_heads(mean_z, heads))[0, -1]
                for p in prompts
            ]
        )
    torch.testing.assert_close(ablated, want.float(), atol=1e-4, rtol=1e-4)
    assert (base - ablated).abs().max() > 1e-4


def test_generation_steers_every_new_token(tiny):
    """With the vector added at each new position, generation equals a loop of full steered forwards."""
    model = tiny["llama"]
    ids = [0] + model.tokenizer("Q: hot\nA:", add_special_tokens=False)["input_ids"]
    v = model.W_U[:, 150].detach() * 20
    text = generate(model, ids, max_new_tokens=5, vector=v, layer=1)
    plain = generate(model, ids, max_new_tokens=5)
    assert text != plain
    seq = list(ids)
    for _ in range(5):  # manual: add v at positions len(ids)-1 onwards

        def hook(act, hook, start=len(ids) - 1):
            act[:, start:] += v
            return act

        logits = model.run_with_hooks(torch.tensor([seq]), fwd_hooks=[("blocks.1.hook_resid_post", hook)])
        seq.append(int(logits[0, -1].argmax()))
    assert text == model.tokenizer.decode(seq[len(ids) :])
