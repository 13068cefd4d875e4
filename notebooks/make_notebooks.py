"""Write the notebooks from the cell lists below (one source of truth; outputs are not committed).

python notebooks/make_notebooks.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent


def notebook(cells):
    nb = new_notebook()
    for kind, src in cells:
        if kind == "md":
            nb.cells.append(new_markdown_cell(src.strip()))
        else:
            cell = new_code_cell(src.strip())
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating leaves unchanged notebooks unchanged
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


EXPLORATION = [
    (
        "md",
        """
# Function vectors, explored

A model does a task from examples in its prompt. Which attention heads carry the task? Can we
pull it out as one vector and make the model do the task with no examples at all? This notebook
walks through the method of Todd et al. (2023) on the embedded model, with small counts so it
runs on a laptop CPU in a few minutes. (The CLI's `workbench run` uses the paper's counts.)
""",
    ),
    (
        "params",
        """
MODEL = "smollm2-135m"   # the embedded default; try "gemma3-270m"
TASK = "capitalize"
N_MEAN = 30              # clean prompts for the mean head activations (paper: 100)
N_SCAN = 6               # shuffled-label prompts for the head scan (paper: 25)
""",
    ),
    (
        "code",
        """
import workbench as wb

model = wb.load_model(MODEL)
info = wb.model_info(model)
info
""",
    ),
    (
        "md",
        "## 1. A task, and in-context learning\nDemonstrations come from the train split, queries from valid (extraction) and test (evaluation).",
    ),
    (
        "code",
        """
task = wb.load_task(TASK)
split = task.split(seed=0)
print(split)
print(wb.sample_prompts(split, 1, n_shot=3, kind="icl")[0].text)
""",
    ),
    (
        "code",
        """
icl = wb.encode(model, wb.sample_prompts(split, None, 10, "icl", "test"))
zero = wb.encode(model, wb.sample_prompts(split, None, 0, "zero_shot", "test"))
shuffled = wb.encode(model, wb.sample_prompts(split, None, 10, "shuffled", "test", seed=1))
{"10-shot": wb.accuracy(model, icl), "zero-shot": wb.accuracy(model, zero), "shuffled labels": wb.accuracy(model, shuffled)}
""",
    ),
    (
        "md",
        "## 2. Which heads carry the task?\nMean head outputs over clean prompts, then each head's causal indirect effect on shuffled-label prompts: patch its last-token output with its clean mean and measure the rise in the answer's probability.",
    ),
    (
        "code",
        """
means = wb.mean_head_activations(model, wb.encode(model, wb.sample_prompts(split, N_MEAN, 10, "icl", seed=1)))
corrupted = wb.encode(model, wb.sample_prompts(split, N_SCAN, 10, "shuffled", seed=2))
scan = wb.scan_heads(model, corrupted, means.mean_z, task=TASK)
scan
""",
    ),
    ("code", "wb.figures.aie_heatmap(scan, top_k=wb.default_top_k(info.n_total_heads))"),
    ("md", "What do the top heads look at? ◆ marks the query's last token, ▸ the demonstrations' labels."),
    ("code", "wb.attention_view(model, icl[0], [(l, h) for l, h, _ in scan.top_heads(3)], 'top heads')"),
    ("md", "## 3. The function vector, added to zero-shot prompts"),
    (
        "code",
        """
heads = [(l, h) for l, h, _ in scan.top_heads(wb.default_top_k(info.n_total_heads))]
fv = wb.FunctionVector.from_heads(means, heads, info.name, TASK)
sweep = wb.layer_sweep(model, fv.vector, {"zero_shot": zero, "shuffled": shuffled}, layers=range(0, info.n_layers, 3))
wb.figures.layer_sweep_figure(sweep)
""",
    ),
    (
        "code",
        """
LAYER = sweep.best_layer()
{"layer": LAYER, "zero-shot + FV": wb.accuracy(model, zero, wb.add_vector(model, LAYER, fv.vector)),
 "shuffled + FV": wb.accuracy(model, shuffled, wb.add_vector(model, LAYER, fv.vector))}
""",
    ),
    ("md", "Greedy generation with the FV added at every new token:"),
    (
        "code",
        """
for pair in split.test[:3]:
    ids = wb.encode(model, wb.sample_prompts(split, None, 0, "zero_shot", query_pairs=[pair]))[0].ids
    print(repr(pair.input), "->", repr(wb.generate(model, ids, 6)), "| with FV:", repr(wb.generate(model, ids, 6, fv.vector, LAYER)))
""",
    ),
    ("md", "## 4. Reading the vector: the logit lens"),
    ("code", "wb.figures.decoded_figure(fv.decode(model, k=12))"),
    (
        "md",
        "## 5. Composing two vectors\n`first-item-capitalize` = pick the first of three words, then capitalize it. Does the sum of the two simple FVs do it?",
    ),
    (
        "code",
        """
def extract(task_name):
    sp = wb.load_task(task_name).split(seed=0)
    m = wb.mean_head_activations(model, wb.encode(model, wb.sample_prompts(sp, N_MEAN, 10, "icl", seed=1)), progress=False)
    s = wb.scan_heads(model, wb.encode(model, wb.sample_prompts(sp, N_SCAN, 10, "shuffled", seed=2)), m.mean_z, progress=False)
    return wb.FunctionVector.from_heads(m, [(l, h) for l, h, _ in s.top_heads(len(heads))], info.name, task_name)

first = extract("choose-first-of-3")
composed = first + fv
target = wb.load_task("first-item-capitalize").split(seed=0)
zero_c = wb.encode(model, wb.sample_prompts(target, None, 0, "zero_shot", "test"))
{"zero-shot": wb.accuracy(model, zero_c).top1,
 "+ choose-first FV": wb.accuracy(model, zero_c, wb.add_vector(model, LAYER, first.vector)).top1,
 "+ capitalize FV": wb.accuracy(model, zero_c, wb.add_vector(model, LAYER, fv.vector)).top1,
 "+ their sum": wb.accuracy(model, zero_c, wb.add_vector(model, LAYER, composed.vector)).top1}
""",
    ),
]

EXERCISE_INTRO = (
    "md",
    """
# Function vectors: exercises

Implement the five steps of the method. After each one, run its check: it runs your function
on a tiny random model (instant, no download) against the workbench's reference and tells you,
in words, what is wrong. The checks are your guide; `02_exercises_solutions.ipynb` has answers.

Useful facts: prompts are encoded as `EncodedPrompt` (`.ids`: token ids with BOS, `.answer_id`:
the first token of the answer). `model.run_with_cache(tokens)` returns `(logits, cache)`, and
`cache["blocks.0.attn.hook_z"]` has shape `[batch, pos, head, d_head]`.
`model.run_with_hooks(tokens, fwd_hooks=[(name, fn)])` runs with `fn(activation, hook)`
editing an activation and returning it. `model.W_O` has shape `[layer, head, d_head, d_model]`.
""",
)

SETUP = (
    "code",
    """
import torch
import workbench as wb
ex = wb.exercises
model = ex.exercise_model()   # 2 layers x 4 heads, random weights
""",
)

STEPS = [
    (
        "1. The prompt",
        "Write the paper's format: `Q: x\\nA: y` per demonstration, a blank line between them, and the query as `Q: x\\nA:` (no answer).",
        "def icl_prompt(demos, query):",
        """    blocks = [f"Q: {d.input}\\nA: {d.output}" for d in demos] + [f"Q: {query.input}\\nA:"]
    return "\\n\\n".join(blocks)""",
        "ex.check_icl_prompt(icl_prompt)",
    ),
    (
        "2. Mean head activations",
        "For every layer and head, average `hook_z` at the LAST token over the prompts. Return `[layer, head, d_head]`.",
        "def mean_head_activations(model, prompts):",
        """    total = 0
    for p in prompts:
        _, cache = model.run_with_cache(torch.tensor([p.ids]))
        total = total + torch.stack([cache[f"blocks.{l}.attn.hook_z"][0, -1] for l in range(model.cfg.n_layers)])
    return total / len(prompts)""",
        "ex.check_mean_head_activations(mean_head_activations)",
    ),
    (
        "3. One head's indirect effect",
        "On a (shuffled-label) prompt, replace head `(layer, head)`'s `hook_z` at the last token by `mean_z[layer, head]`. Return P(answer) patched minus P(answer) unpatched.",
        "def indirect_effect(model, prompt, mean_z, layer, head):",
        """    tokens = torch.tensor([prompt.ids])

    def patch(z, hook):
        z[:, -1, head] = mean_z[layer, head]
        return z

    clean = model(tokens)[0, -1].softmax(-1)[prompt.answer_id]
    patched = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", patch)])[0, -1].softmax(-1)[prompt.answer_id]
    return float(patched - clean)""",
        "ex.check_indirect_effect(indirect_effect)",
    ),
    (
        "4. The function vector",
        "Sum, over the given heads, each head's mean output mapped into the residual stream: `mean_z[l, h] @ W_O[l, h]`.",
        "def function_vector(model, mean_z, heads):",
        """    return sum(mean_z[l, h] @ model.W_O[l, h] for l, h in heads)""",
        "ex.check_function_vector(function_vector)",
    ),
    (
        "5. Adding it to a zero-shot prompt",
        "Run the model with `vector` added to the residual stream after block `layer` (`blocks.{layer}.hook_resid_post`), at the last token only. Return the logits.",
        "def add_fv(model, tokens, vector, layer):",
        """    def hook(resid, hook):
        resid[:, -1] += vector
        return resid

    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.hook_resid_post", hook)])""",
        "ex.check_add_vector(add_fv)",
    ),
]


def exercises(solved: bool):
    cells = [
        EXERCISE_INTRO
        if not solved
        else ("md", "# Function vectors: exercises — solutions\n\nEvery check below passes."),
        SETUP,
    ]
    for title, text, signature, body, check in STEPS:
        cells.append(("md", f"## {title}\n{text}"))
        cells.append(
            (
                "code",
                f"{signature}\n{body if solved else '    # your code here' + chr(10) + '    raise NotImplementedError'}",
            )
        )
        cells.append(("code", check))
    return cells


FIGURES = [
    (
        "md",
        """
# Paper figures

Regenerates every figure in `figures/` for the model and tasks below: from cached stages when
they exist (fast), or from scratch with `FRESH = True`. The same as
`workbench figures --model MODEL --tasks ... --out figures/`.
""",
    ),
    (
        "params",
        """
MODEL = "smollm2-135m"
TASKS = ["antonym", "capitalize", "present-past", "country-capital"]
OUT = "../figures"
FRESH = False          # True: recompute every stage instead of reading the cache
N_MEAN, N_SCAN = 100, 25
""",
    ),
    (
        "code",
        """
import workbench as wb
from pathlib import Path
from IPython.display import HTML, Image, display

model = wb.load_model(MODEL)
written = wb.paper_figures(model, TASKS, OUT, wb.Protocol(n_mean_prompts=N_MEAN, n_scan_prompts=N_SCAN), fresh=FRESH,
                        formats=("html", "png"))
for name, paths in written.items():
    png = [p for p in paths if p.suffix == ".png"]
    print(name)
    display(Image(str(png[0]), width=640) if png else HTML(f"<a href='{paths[0]}'>{paths[0].name}</a>"))
""",
    ),
]


# 04: beyond the paper.  Each method owns one list of cells; the notebook is their concatenation.
BEYOND_INTRO = [
    (
        "md",
        """
# Beyond the paper: other ways to put a task in a vector

Three neighbours of function vectors, on the embedded model with small counts: learned soft task
vectors (a weight per head), attribution patching (the head scan from one backward pass), and
contrastive steering vectors (the difference of two prompt sets' mean residuals).
""",
    ),
    (
        "params",
        """
MODEL = "smollm2-135m"   # the embedded default
""",
    ),
    (
        "code",
        """
import workbench as wb

model = wb.load_model(MODEL)
wb.model_info(model)
""",
    ),
]
SOFT = [  # learned soft task vectors (workbench.soft)
    (
        "md",
        """
## Learned soft task vectors

Instead of picking the top heads by causal effect, learn one weight per head, $\\alpha_h \\in [0, 1]$:
at the last token each head's output becomes $(1 - \\alpha_h)\\, z_h + \\alpha_h\\, \\bar z_h$, with
$\\bar z_h$ its mean over clean ICL prompts. The $L \\times H$ weights are fitted by Adam on zero-shot
prompts of the train split (cross-entropy of the answer) plus $\\lambda \\sum_h \\alpha_h$, so few heads
stay on. Small counts here (the means over 10 prompts, the scan over 2, 30 steps); `bench/soft_task_vectors.py`
runs the full comparison with the paper's protocol.
""",
    ),
    (
        "code",
        """
import workbench as wb

SOFT_TASK, SOFT_N_MEAN, SOFT_N_SCAN, SOFT_STEPS, SOFT_SPARSITY = "antonym", 10, 2, 30, 0.05
split = wb.load_task(SOFT_TASK).split(seed=0)
means = wb.mean_head_activations(model, wb.encode(model, wb.sample_prompts(split, SOFT_N_MEAN, 10, "icl", seed=1)))
scan = wb.scan_heads(model, wb.encode(model, wb.sample_prompts(split, SOFT_N_SCAN, 10, "shuffled", seed=2)),
                  means.mean_z, task=SOFT_TASK)
train = wb.encode(model, wb.sample_prompts(split, None, 0, "zero_shot", "train"))
soft = wb.fit_soft_task_vector(model, train, means.mean_z, steps=SOFT_STEPS, sparsity=SOFT_SPARSITY, task=SOFT_TASK)
soft
""",
    ),
    (
        "code",
        """
import workbench as wb

test = wb.encode(model, wb.sample_prompts(split, None, 0, "zero_shot", "test"))
top = [(l, h) for l, h, _ in scan.top_heads(8)]
print(f"zero-shot:                 {wb.accuracy(model, test).top1:.0%}")
print(f"zero-shot + soft:          {wb.accuracy(model, test, soft.hooks(model)).top1:.0%}  ({soft.n_on()} heads with alpha > 0.5)")
print(f"zero-shot + top-8 patched: {wb.accuracy(model, test, wb.mean_ablate_heads(model, top, means.mean_z)).top1:.0%}")
print(f"Spearman(alpha, AIE):      {wb.spearman(soft.alpha, scan.aie):+.2f}")
wb.figures.soft_alpha_figure(soft, scan)
""",
    ),
]
ATTRIBUTION = [  # attribution patching against the exact scan
    (
        "md",
        """
## Attribution patching: the head scan from one backward pass

The exact scan patches each head in turn. Attribution patching estimates every head's effect at
once, to first order: $\\Delta P \\approx \\nabla_{z_h} P \\cdot (\\bar z_h - z_h)$ at the last token, one
forward and one backward pass per prompt. Same prompts and means as the scan above; how well do
the two rankings agree?
""",
    ),
    (
        "code",
        """
import workbench as wb

scan_prompts_ = wb.encode(model, wb.sample_prompts(split, SOFT_N_SCAN, 10, "shuffled", seed=2))  # the scan's prompts
approx = wb.scan_heads(model, scan_prompts_, means.mean_z, task=SOFT_TASK, method="attribution")
print(wb.compare_scans(scan, approx, k=10))
H = wb.model_info(model).n_heads
wb.figures.scatter_figure(scan.aie.flatten().tolist(), approx.aie.flatten().tolist(),
                       [f"L{i // H}H{i % H}" for i in range(scan.aie.numel())],
                       "exact AIE", "attribution estimate", "attribution patching vs the exact scan")
""",
    ),
]
STEERING = [  # contrastive steering vectors (workbench.steering)
    (
        "md",
        """
## Contrastive steering vectors

A function vector is built from attention heads. A cruder recipe needs no head scan at all: take
two sets of prompts that differ in one property, average each set's last-token residual after a
layer, and subtract (positive minus negative). `SteeringVector` does this for every layer in one
pass per set; adding `alpha * v[L]` after block `L` (at the prompt's last token and every
generated one) should push generations toward the positive set, and projecting `v` out should
remove what the model writes along it. The contrast here is `tasks/steering/sentiment.json`: 36
positive against 36 negative statements with the same openings (`sycophancy.json`, in the chat
template, is the other built-in one).
""",
    ),
    (
        "code",
        """
import workbench as wb

contrast = wb.load_contrast("sentiment")
sv = wb.SteeringVector.from_contrast(model, contrast)   # one pass per set, all 30 layers
sv
""",
    ),
    (
        "md",
        """
The vector grows with depth, as the residual stream does. A cheap score of its effect: the
next-token log-probability of positive words (" great", " wonderful", ...) minus negative ones
(" awful", " terrible", ...) on the 12 held-out test prompts (neutral openings on other topics),
with the vector added at one layer.
""",
    ),
    (
        "code",
        """
test = wb.encode_texts(model, contrast.test)
pos, neg = contrast.score_words["positive"], contrast.score_words["negative"]
print(f"no intervention: {wb.logit_gap(model, test, pos, neg).mean():+.2f}")
for layer in (6, 15, 24):
    gaps = [float(wb.logit_gap(model, test, pos, neg, sv.add_hooks(model, layer, a)).mean()) for a in (-4, 4)]
    print(f"layer {layer:2d}: alpha -4 -> {gaps[0]:+.2f}, alpha +4 -> {gaps[1]:+.2f}")
""",
    ),
    (
        "md",
        """
Greedy generations with the vector added (`+`), subtracted (`-`), and with the direction
projected out of every layer: to zero (`proj 0`, Arditi et al.'s directional ablation) and to the
midpoint of the two sets' means (`proj mid`).
""",
    ),
    (
        "code",
        """
LAYER, ALPHA, N_TOKENS = 12, 8.0, 10
for prompt in contrast.test[:2]:
    print(repr(prompt))
    print("   none    ", repr(sv.generate(model, prompt, max_new_tokens=N_TOKENS)))
    print("   +        ", repr(sv.generate(model, prompt, LAYER, ALPHA, max_new_tokens=N_TOKENS)))
    print("   -        ", repr(sv.generate(model, prompt, LAYER, -ALPHA, max_new_tokens=N_TOKENS)))
    print("   proj 0   ", repr(sv.generate(model, prompt, project=True, max_new_tokens=N_TOKENS)))
    print("   proj mid ", repr(sv.generate(model, prompt, project=True, centered=True, max_new_tokens=N_TOKENS)))
""",
    ),
    (
        "code",
        """
sv.at(LAYER).decode(model, k=8)   # one layer's vector is a wb.FunctionVector: decode, save, add
""",
    ),
    (
        "md",
        """
**What a 135M model shows, and what it does not** (`bench/steering_effect.py`,
`runs/smollm2-135m/steering.json`). Sentiment steers: the next-token log-prob gap (positive minus
negative words, 12 held-out prompts, +0.43 with no intervention) moves monotonically with alpha,
little in early layers (layer 3: +0.36 at alpha -8, +0.57 at +8) and strongly late (layer 27: -7.5
at -8, +10.8 at +8). In 10-token greedy generations with the vector after layer 12, alpha +8 turns
most continuations into "amazing ... I'm so excited" (positive words in 42 % of them, 33 % without),
alpha -8 removes every positive word (0 %) and gives "a joke", "evil" — or derails the text; 12
prompts and a word list are a crude score. Projecting the direction out to zero *raises* the gap
(+0.43 -> +2.90): a mean difference is not a direction through the typical state, so zeroing the
component moves states past the midpoint. Projecting to the midpoint of the two means lowers it
(-1.18) and gives "a mess", "a disaster": removal is two-sided. Sycophancy (chat template) moves the
agreement-word gap only from layer 21 on (-0.15 -> +2.5 at alpha +8, -5.1 at -8), and generations
were not scored: whether the model then *agrees* rather than emitting "Yes" is not shown at this size.
""",
    ),
]


def main():
    out = {
        "01_exploration.ipynb": notebook(EXPLORATION),
        "02_exercises.ipynb": notebook(exercises(solved=False)),
        "02_exercises_solutions.ipynb": notebook(exercises(solved=True)),
        "03_paper_figures.ipynb": notebook(FIGURES),
        "04_beyond_the_paper.ipynb": notebook(BEYOND_INTRO + SOFT + ATTRIBUTION + STEERING),
    }
    for name, nb in out.items():
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
