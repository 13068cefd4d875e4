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
remove what the model writes along it. The contrast here is the built-in `sentiment.json`: 36
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


# 05: the course chapter.  ("exercise", title, text, signature, solution body, check) cells become a
# stub that raises NotImplementedError (course) or the solution (solutions), then the check.
COURSE = [
    (
        "md",
        """
# Function vectors: a course chapter

**From the puzzle of in-context learning to a steering vector, in an afternoon on a laptop CPU.**

A model reads `Q: hot\\nA: cold\\n\\nQ: big\\nA: small\\n\\nQ: fast\\nA:` and answers ` slow`. Nothing in
its weights changed; the task came from the prompt. Where does the model keep "the task" while it
reads? Todd et al. (2023) found that a handful of attention heads carry it, and that the sum of
their mean outputs, a **function vector** (FV), makes the model do the task with no examples.

Each section has a little maths, a **🤔 Predict** question (write your guess down before you run
the cell below it), and an **exercise**: a function you write, and a check that runs it on a tiny
random model (instant; some also on the real model) and says in plain words what is wrong. Then
the same idea runs at scale on the embedded SmolLM2-135M through the workbench (`wb.`).
`05_course_solutions.ipynb` has answers, and answers to the reflection questions at the end.

Handy facts: a prompt is an `EncodedPrompt` (`.ids`: token ids, BOS first; `.answer_id`: the first
token of the answer). `model.run_with_cache(tokens)` returns `(logits, cache)`;
`cache["blocks.3.hook_resid_post"]` is `[batch, pos, d_model]`, `cache["blocks.3.attn.hook_z"]` is
`[batch, pos, head, d_head]`. `model.run_with_hooks(tokens, fwd_hooks=[(name, fn)])` calls
`fn(activation, hook)`, which may edit the activation in place and return it.
""",
    ),
    (
        "params",
        """
MODEL = "smollm2-135m"       # the embedded model; the tests run the stub notebook on "tiny-llama"
TASK = "capitalize"
SECOND_TASK = "present-past"
LAYER = 17                   # where vectors are added (this model's best FV layers: 13-22)
N_MEAN, N_SCAN = 20, 3       # prompts for head means and the head scan (paper: 100 and 25)
EXPLORE_TOP = 3              # heads the explorer precomputes
""",
    ),
    (
        "code",
        """
import plotly.graph_objects as go
import torch
import workbench as wb

course = wb.course
tiny = course.exercise_model()         # 2 layers x 4 heads, random weights: where every check runs first
model = wb.load_model(MODEL)
n_layers = wb.model_info(model).n_layers
task = wb.load_task(TASK)
split = task.split(seed=0)
icl = wb.encode(model, wb.sample_prompts(split, 20, 10, "icl", "train", seed=1))       # clean 10-shot prompts
zero = wb.encode(model, wb.sample_prompts(split, None, 0, "zero_shot", "test"))       # every test query alone
print(split)
print("10-shot:", wb.accuracy(model, icl), "\\nzero-shot:", wb.accuracy(model, zero))
""",
    ),
    # --- 1 -----------------------------------------------------------------------------------------
    (
        "md",
        """
## 1. The task-encoding state h

After block $\\ell$, the residual stream at the last token $T$ of an ICL prompt $p$ is
$h_\\ell(p) = x_\\ell^{(T)}(p) \\in \\mathbb{R}^{d_{model}}$ (`blocks.ℓ.hook_resid_post[-1]`). It is
the only thing the answer can be computed from, so if the task lives anywhere, it lives in
$h_\\ell$. Hendel et al. (2023) overwrite a zero-shot prompt's last state with it; here we **add**
the mean state $\\bar h_\\ell = \\frac1N\\sum_p h_\\ell(p)$ to zero-shot prompts:
$x_\\ell^{(T)}(q) \\leftarrow x_\\ell^{(T)}(q) + \\bar h_\\ell$.
""",
    ),
    (
        "exercise",
        "Exercise 1: the task state",
        "Return the residual after block `layer` at the last token of one prompt: shape `[d_model]`.",
        "def task_state(model, prompt, layer):",
        """    _, cache = model.run_with_cache(torch.tensor([prompt.ids]))
    return cache[f"blocks.{layer}.hook_resid_post"][0, -1]""",
        "course.check_task_state(task_state, model)   # the tiny model first, then the real one",
    ),
    (
        "md",
        """
**🤔 Predict.** $\\bar h_\\ell$ is the mean over many prompts of *everything* at the last token: the
task, but also "a colon was just read" and the average query. Added after layer `LAYER`, will it
make zero-shot prompts do the task? Better or worse than 10-shot ICL?
""",
    ),
    (
        "code",
        """
means = wb.mean_head_activations(model, icl)      # also keeps the mean last-token residual of every layer
h = means.mean_resid                              # [layer, d_model]
h_one = wb.mean_head_activations(model, icl[:1]).mean_resid   # the states of ONE ICL prompt
print("zero-shot:", wb.accuracy(model, zero))
print(f"+ one prompt's h after layer {LAYER}:", wb.accuracy(model, zero, wb.add_vector(model, LAYER, h_one[LAYER])))
print(f"+ the mean h over {len(icl)} prompts:", wb.accuracy(model, zero, wb.add_vector(model, LAYER, h[LAYER])))
""",
    ),
    # --- 2 -----------------------------------------------------------------------------------------
    (
        "md",
        """
## 2. Which layer encodes the task?

Add $\\bar h_\\ell$ after block $\\ell$, for every $\\ell$, and measure the mean probability of the
right answer: $\\bar P_\\ell = \\frac1N\\sum_{i} P(y_i \\mid q_i,\\; x_\\ell^{(T)} \\mathrel{+}= \\bar h_\\ell)$.
A probability is smoother than top-1 accuracy on few prompts. Note: *average* over prompts, and
the state of layer $\\ell$ goes after block $\\ell$, not before it.
""",
    ),
    (
        "exercise",
        "Exercise 2: a layer sweep",
        "For each layer `l`, add `states[l]` after block `l` at the last token, and return the answer's probability averaged over `prompts`: one float per layer.",
        "def layer_sweep(model, states, prompts):",
        """    out = []
    for layer in range(model.cfg.n_layers):
        def hook(x, hook):
            x[:, -1] += states[layer]
            return x
        probs = []
        for p in prompts:
            logits = model.run_with_hooks(torch.tensor([p.ids]), fwd_hooks=[(f"blocks.{layer}.hook_resid_post", hook)]).detach()
            probs.append(float(logits[0, -1].softmax(-1)[p.answer_id]))
        out.append(sum(probs) / len(probs))
    return out""",
        "course.check_layer_sweep(layer_sweep)",
    ),
    (
        "md",
        "**🤔 Predict.** Early layers (the state is still mostly the last word), middle, or late (the state is already the model's *answer*, not the task)? Sketch the curve before running.",
    ),
    (
        "code",
        """
layers = list(range(0, n_layers, max(1, n_layers // 10)))
sweep = [wb.accuracy(model, zero[:24], wb.add_vector(model, l, h[l])).top1 for l in layers]
go.Figure(go.Scatter(x=layers, y=sweep, mode="lines+markers"), layout=dict(
    xaxis_title="layer the mean state is added after", yaxis_title="zero-shot top-1", width=560, height=320)).show()
""",
    ),
    # --- 3 -----------------------------------------------------------------------------------------
    (
        "md",
        """
## 3. Mean head activations, and one head's causal indirect effect

The residual is a sum of what every head wrote. Head $(\\ell, h)$ writes $z_{\\ell h} W_O^{\\ell h}$, with
$z_{\\ell h}$ its output before the projection (`hook_z`). Its mean at the last token over clean
prompts, $\\bar z_{\\ell h} = \\frac1N\\sum_p z_{\\ell h}^{(T)}(p)$, is what the head "usually says" when
the task is in context. To test whether a head *carries* the task, take a prompt whose labels are
shuffled (the task is hard to see), write $\\bar z_{\\ell h}$ into that head at the last token, and
see how much the right answer gains:

$$\\mathrm{CIE}_{\\ell h}(\\tilde p) = P(y \\mid \\tilde p,\\; z_{\\ell h}^{(T)} := \\bar z_{\\ell h}) - P(y \\mid \\tilde p).$$

Averaged over prompts, it is the head's **AIE**.
""",
    ),
    (
        "exercise",
        "Exercise 3a: mean head activations",
        "For every layer and head, average `hook_z` at the LAST token over the prompts. Return `[layer, head, d_head]`.",
        "def mean_head_activations(model, prompts):",
        """    total = 0
    for p in prompts:
        _, cache = model.run_with_cache(torch.tensor([p.ids]))
        total = total + torch.stack([cache[f"blocks.{l}.attn.hook_z"][0, -1] for l in range(model.cfg.n_layers)])
    return total / len(prompts)""",
        "course.check_mean_head_activations(mean_head_activations)",
    ),
    (
        "exercise",
        "Exercise 3b: one head's indirect effect",
        "On `prompt` (shuffled labels), replace head `(layer, head)`'s `hook_z` at the last token by `mean_z[layer, head]`; return P(answer) patched minus P(answer) unpatched.",
        "def indirect_effect(model, prompt, mean_z, layer, head):",
        """    tokens = torch.tensor([prompt.ids])

    def patch(z, hook):
        z[:, -1, head] = mean_z[layer, head]
        return z

    clean = model(tokens)[0, -1].softmax(-1)[prompt.answer_id]
    patched = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", patch)])[0, -1].softmax(-1)
    return float(patched[prompt.answer_id] - clean)""",
        "course.check_indirect_effect(indirect_effect)",
    ),
    (
        "md",
        """
**🤔 Predict.** SmolLM2 has 30 layers x 9 heads = 270 heads. How many carry most of the effect:
2, 20, 100? In which third of the network?

The workbench's scan runs your loop for every head at once (exactly: one forward per prompt, see
`wb.scan_heads`), inside the paper's protocol. With the layer fixed, one run takes about a minute here.
""",
    ),
    (
        "code",
        """
protocol = wb.Protocol(n_mean_prompts=N_MEAN, n_scan_prompts=N_SCAN, layer=LAYER)
result = wb.run_task(model, task, protocol)
print(result.scan)
wb.figures.aie_heatmap(result).show()   # the FV's own heads outlined
""",
    ),
    (
        "md",
        "Explore it: click a head on the heatmap for its attention on an ICL prompt, its effect on each scan prompt, what its mean output decodes to, and what removing it from the FV does (the control below the page re-evaluates any set of heads live).",
    ),
    (
        "code",
        """
explorer = wb.explore(result, model, top=EXPLORE_TOP)
print(explorer)
explorer
""",
    ),
    # --- 4 -----------------------------------------------------------------------------------------
    (
        "md",
        """
## 4. The function vector

Take the top heads $\\mathcal A$ by AIE and sum what they usually write:
$v = \\sum_{(\\ell,h) \\in \\mathcal A} \\bar z_{\\ell h} W_O^{\\ell h} \\in \\mathbb R^{d_{model}}$ (a *sum*: each head
writes its own part into the same stream). Add $v$ after block $L$ at the last token of a zero-shot
prompt. To generate several tokens, keep it on: at the prompt's last token *and at every new token*.
""",
    ),
    (
        "exercise",
        "Exercise 4a: the function vector",
        "Sum, over `heads`, each head's mean output mapped into the residual stream: `mean_z[l, h] @ W_O[l, h]`.",
        "def function_vector(model, mean_z, heads):",
        """    return sum(mean_z[l, h] @ model.W_O[l, h] for l, h in heads)""",
        "course.check_function_vector(function_vector)",
    ),
    (
        "exercise",
        "Exercise 4b: generation with the FV kept on",
        "Greedy-generate `n_new` tokens after `ids` with `vector` added after block `layer` at the prompt's last position and at every generated position (rerun the whole sequence each step). Return the new token ids.",
        "def generate_with_fv(model, ids, vector, layer, n_new):",
        """    tokens = torch.tensor([ids])
    start = len(ids) - 1

    def hook(x, hook):
        x[:, start:] += vector
        return x

    new = []
    for _ in range(n_new):
        logits = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.hook_resid_post", hook)])
        new.append(int(logits[0, -1].argmax()))
        tokens = torch.cat([tokens, torch.tensor([[new[-1]]])], 1)
    return new""",
        "course.check_generate_with_fv(generate_with_fv)",
    ),
    (
        "md",
        "**🤔 Predict.** Zero-shot accuracy with the FV: closer to zero-shot, to the mean state of section 1, or to 10-shot ICL? And in free generation, does the model stop after the answer?",
    ),
    (
        "code",
        """
print(result)
for p in zero[:4]:
    plain = wb.generate(model, p.ids, 6, stop_at_newline=True)
    steered = wb.generate(model, p.ids, 6, result.fv.vector, LAYER, stop_at_newline=True)
    print(f"{p.prompt.text!r:>24}  without: {plain!r:<16} with the FV: {steered!r}")
""",
    ),
    # --- 5 -----------------------------------------------------------------------------------------
    (
        "md",
        """
## 5. FV arithmetic

If FVs were clean task directions, they would compose: $v_A + v_B$ would do both tasks, and
$v_A - v_B$ would do A and *undo* B. How alike two FVs are is their cosine,
$\\cos(u, v) = \\frac{u \\cdot v}{\\lVert u \\rVert\\, \\lVert v \\rVert}$.
""",
    ),
    (
        "exercise",
        "Exercise 5: cosine similarity",
        "Return the cosine similarity of two vectors (a float).",
        "def cosine(u, v):",
        """    return float(u @ v / (u.norm() * v.norm()))""",
        "course.check_cosine(cosine)",
    ),
    (
        "md",
        "**🤔 Predict.** Capitalize and present-past share their top heads (L20H5 is first in both). Is the cosine of their FVs near 0, near 1, or in between? Does $v_A + v_B$ still do task A?",
    ),
    (
        "code",
        """
# a quick FV of the second task (the same steps as run_task, without its filter and evaluations)
split_b = wb.load_task(SECOND_TASK).split(seed=0)
icl_b = wb.encode(model, wb.sample_prompts(split_b, N_MEAN, 10, "icl", "valid", seed=1))
shuffled_b = wb.encode(model, wb.sample_prompts(split_b, N_SCAN, 10, "shuffled", "valid", seed=2))
zero_b = wb.encode(model, wb.sample_prompts(split_b, None, 0, "zero_shot", "test"))
means_b = wb.mean_head_activations(model, icl_b)
scan_b = wb.scan_heads(model, shuffled_b, means_b.mean_z)
fv_a = result.fv
top_b = [(l, h) for l, h, _ in scan_b.top_heads(len(fv_a.heads))]
fv_b = wb.FunctionVector.from_heads(means_b, top_b, model, task=SECOND_TASK)
print(fv_a)
print(fv_b)
print(f"cos(FV {TASK}, FV {SECOND_TASK}) = {float(fv_a.vector @ fv_b.vector / (fv_a.norm * fv_b.norm)):.2f}")
for name, v in [(TASK, fv_a), (SECOND_TASK, fv_b), ("sum", fv_a + fv_b), (f"{TASK} - {SECOND_TASK}", fv_a - fv_b)]:
    on_a = wb.accuracy(model, zero[:24], wb.add_vector(model, LAYER, v.vector)).top1
    on_b = wb.accuracy(model, zero_b[:24], wb.add_vector(model, LAYER, v.vector)).top1
    print(f"{name:>28}: zero-shot {TASK} {on_a:.0%}   {SECOND_TASK} {on_b:.0%}")
""",
    ),
    (
        "md",
        """
What the composition study shows on this model (`python bench/composition.py --model smollm2-135m
--composed first-item-capitalize`, README): on the composed task "capitalize the first of three
words", 10-shot ICL gets 79 %, zero-shot 0 %, the composed task's *own* FV 64 %, but the *sum* of the
`choose-first-of-3` and `capitalize` FVs only 12 %. On a 135M model FVs do not simply add up; the
paper's composition result (GPT-J) does not transfer here.
""",
    ),
    # --- 6 -----------------------------------------------------------------------------------------
    (
        "md",
        """
## 6. Ablation: is the FV *necessary*?

Adding a vector shows it is *sufficient* to trigger the task. To ask whether the model *uses* it,
remove it from a clean ICL run. Two ways:

- **project out** the FV's direction $u = v / \\lVert v \\rVert$ from the residual after every layer:
  $x \\leftarrow x - (x \\cdot u)\\, u$;
- **mean-ablate** the FV's heads: write $\\bar z_{\\ell h}$ into each at the last token (their usual,
  task-averaged output), against as many random heads as a control.
""",
    ),
    (
        "exercise",
        "Exercise 6a: project out a direction",
        "`resid` is `[batch, pos, d_model]`; remove its component along `direction` (normalise it first). Return the same shape.",
        "def project_out(resid, direction):",
        """    u = direction / direction.norm()
    return resid - (resid @ u)[..., None] * u""",
        "course.check_project_out(project_out)",
    ),
    (
        "exercise",
        "Exercise 6b: mean-ablate heads",
        "Run `tokens` with each `(layer, head)` in `heads` having its last-token `hook_z` replaced by `mean_z[layer, head]`. Return the logits.",
        "def mean_ablate(model, tokens, heads, mean_z):",
        """    def hook(z, hook):
        for l, h in heads:
            if l == hook.layer():
                z[:, -1, h] = mean_z[l, h]
        return z

    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{l}.attn.hook_z", hook) for l in {l for l, _ in heads}])""",
        "course.check_mean_ablate(mean_ablate)",
    ),
    (
        "md",
        "**🤔 Predict.** Clean 10-shot ICL on capitalize is 100 %. After mean-ablating the 8 FV heads? After projecting the FV direction out of every layer?",
    ),
    (
        "code",
        """
import random

heads = list(result.fv.heads)
others = [(l, h) for l in range(n_layers) for h in range(wb.model_info(model).n_heads) if (l, h) not in heads]
clean = icl[:12]                                   # clean 10-shot prompts (wb.studies.ablation: the full test split)
print("clean ICL:               ", wb.accuracy(model, clean))
print("FV heads mean-ablated:   ", wb.accuracy(model, clean, wb.mean_ablate_heads(model, heads, result.means.mean_z)))
for seed in (0, 1):
    draw = random.Random(seed).sample(others, len(heads))
    print(f"random heads (draw {seed}):  ", wb.accuracy(model, clean, wb.mean_ablate_heads(model, draw, result.means.mean_z)))
print("FV direction projected out:", wb.accuracy(model, clean, wb.project_out(model, result.fv.vector)))
""",
    ),
    # --- 7 -----------------------------------------------------------------------------------------
    (
        "md",
        """
## 7. The minimal head set

How few heads does the task need? Rank heads by AIE and grow the FV one head at a time until it
keeps a share $s$ of a reference accuracy $a_{ref}$: the smallest $k$ with
$\\mathrm{acc}(v_{1..k}) \\ge s \\cdot a_{ref}$ (then drop heads that turn out not to matter).
Chosen on the validation split, reported on the test split.
""",
    ),
    (
        "exercise",
        "Exercise 7: the shortest prefix",
        "`accuracy_of(heads)` scores a head list. Return the SHORTEST prefix of `ranked_heads` whose accuracy reaches `target` (`>=`); all of them if none does.",
        "def minimal_prefix(accuracy_of, ranked_heads, target):",
        """    for k in range(1, len(ranked_heads) + 1):
        if accuracy_of(ranked_heads[:k]) >= target:
            return ranked_heads[:k]
    return ranked_heads""",
        "course.check_minimal_prefix(minimal_prefix)",
    ),
    (
        "md",
        "**🤔 Predict.** To keep 90 % of the run's own FV accuracy, how many of its heads are needed?",
    ),
    (
        "code",
        """
wb.studies.find_minimal_heads(model, result, share=0.9, of="fv", max_heads=len(result.fv.heads))
""",
    ),
    # --- 8 -----------------------------------------------------------------------------------------
    (
        "md",
        """
## 8. Capstone: a contrastive steering vector

No head scan at all: take prompts with a property (positive statements) and without it (negative
ones), and subtract their mean last-token states after block $\\ell$:
$s_\\ell = \\frac{1}{|P^+|}\\sum_{p \\in P^+} x_\\ell^{(T)}(p) - \\frac{1}{|P^-|}\\sum_{p \\in P^-} x_\\ell^{(T)}(p)$.
Add $\\alpha s_\\ell$ (steer toward positive), subtract it, or project its direction out.
""",
    ),
    (
        "exercise",
        "Exercise 8: a steering vector",
        "Mean last-token residual after block `layer` over `positive` prompts, minus the same over `negative` ones. Shape `[d_model]`.",
        "def steering_vector(model, positive, negative, layer):",
        """    def mean_state(prompts):
        states = []
        for p in prompts:
            _, cache = model.run_with_cache(torch.tensor([p.ids]))
            states.append(cache[f"blocks.{layer}.hook_resid_post"][0, -1])
        return torch.stack(states).mean(0)

    return mean_state(positive) - mean_state(negative)""",
        "course.check_steering_vector(steering_vector, model)",
    ),
    (
        "md",
        "**🤔 Predict.** Steering after an early layer, or a late one: which moves the next word's sentiment more? And does projecting the direction out make a text *neutral*?",
    ),
    (
        "code",
        """
contrast = wb.load_contrast("sentiment")
sv = wb.SteeringVector.from_contrast(model, contrast)
test = wb.encode_texts(model, contrast.test)
pos, neg = contrast.score_words["positive"], contrast.score_words["negative"]
print(f"log P(positive words) - log P(negative words), no vector: {wb.logit_gap(model, test, pos, neg).mean():+.2f}")
for layer in sorted({n_layers // 5, max(0, n_layers - 3)}):
    gaps = [float(wb.logit_gap(model, test, pos, neg, sv.add_hooks(model, layer, a)).mean()) for a in (-8, 8)]
    print(f"after layer {layer:2d}: alpha -8 -> {gaps[0]:+.2f}   alpha +8 -> {gaps[1]:+.2f}")
at = n_layers * 2 // 5
for prompt in contrast.test[:1]:
    print(repr(prompt))
    print("   add     ", repr(sv.generate(model, prompt, at, 8.0, max_new_tokens=8)))
    print("   subtract", repr(sv.generate(model, prompt, at, -8.0, max_new_tokens=8)))
    print("   ablate  ", repr(sv.generate(model, prompt, project=True, max_new_tokens=8)))
""",
    ),
    (
        "md",
        'Read the generations: does `add` read positive and `subtract` negative? `sycophancy` (`wb.load_contrast("sycophancy")`, in the chat template) is the other built-in contrast: try it, and ask whether the model then *agrees with the user* or only says agreeing words.',
    ),
]

REFLECTION_QUESTIONS = """
## 9. Reflection

1. How many orthogonal tasks could the residual stream hold?
2. Which tasks might not be linearly encodable?
3. How would you tell a true task representation from a correlated signal?
4. What does it mean that vectors can make a model do harmful tasks?
"""

REFLECTION_ANSWERS = """
**1. How many orthogonal tasks?** Exactly orthogonal: at most $d_{model}$ (576 here), and far fewer
in practice, since the stream also carries the tokens, positions and everything else. But
*nearly* orthogonal directions are cheap in high dimensions: the number of unit vectors with
pairwise $|\\cos| < \\varepsilon$ grows like $e^{c\\,\\varepsilon^2 d}$, so thousands of tasks can coexist
with small interference (superposition). The cosine of two FVs in section 5 measures the
interference you actually have; shared heads (L20H5 everywhere) make task FVs far from orthogonal.

**2. Which tasks might not be linearly encodable?** A vector added at one position is one fixed
shift. Tasks whose output depends on the input in a way no single shift can pick out resist it:
tasks that need a computation on the query (arithmetic, counting, multi-step composition,
"the third letter"), tasks with many conditional cases, and tasks that are a *combination* of
others (section 5: the sum of two FVs did not compose on this model). The FV triggers a task the
model already knows how to run; it cannot add a new computation.

**3. True task representation or correlated signal?** Demand more than "adding it raises accuracy":
it should be *sufficient* across formats and contexts (zero-shot, shuffled labels, other
templates, natural text), *necessary* (ablating or projecting it out hurts ICL, more than random
heads), *specific* (it raises the right answer, not a formatting token; the logit lens of the FV
here decodes to `\\n`, a warning), *stable* (seeds and splits agree), and it should beat baselines
that carry the correlate but not the task (the mean state, random heads, a vector of the same
norm). Held-out queries and held-out templates separate memorised answers from the task.

**4. Vectors that make a model do harmful tasks.** Steering works on the model's internals, below
the level where a refusal policy is trained: a vector (or a projection, as in Arditi et al.'s
refusal direction) can switch a behaviour on or off without any prompt a filter could see. So
safety that lives only in prompts or fine-tuned refusals is shallow against anyone with the
weights; open weights mean open steering. It also cuts the other way: the same tools find and
remove the directions of unwanted behaviour (sycophancy, deception), and measure whether a
safety intervention reached the representation or only the surface.
"""


def course(solved: bool):
    head = (
        "md",
        "# Function vectors: a course chapter — solutions\n\nEvery check passes, and the reflection questions are answered at the end.",
    )
    cells = [] if not solved else [head]
    for cell in COURSE:
        if cell[0] != "exercise":
            if solved and cell is COURSE[0]:
                continue
            cells.append(cell)
            continue
        _, title, text, signature, body, check = cell
        cells.append(("md", f"### {title}\n{text}"))
        stub = "    # your code here\n    raise NotImplementedError"
        cells.append(("code", f"{signature}\n{body if solved else stub}"))
        cells.append(("code", check))
    cells.append(
        (
            "md",
            REFLECTION_QUESTIONS
            + (
                "\n" + REFLECTION_ANSWERS
                if solved
                else "\nWrite your answers here; the solutions notebook discusses them."
            ),
        )
    )
    return cells


def main():
    out = {
        "01_exploration.ipynb": notebook(EXPLORATION),
        "02_exercises.ipynb": notebook(exercises(solved=False)),
        "02_exercises_solutions.ipynb": notebook(exercises(solved=True)),
        "03_paper_figures.ipynb": notebook(FIGURES),
        "04_beyond_the_paper.ipynb": notebook(BEYOND_INTRO + SOFT + ATTRIBUTION + STEERING),
        "05_course.ipynb": notebook(course(solved=False)),
        "05_course_solutions.ipynb": notebook(course(solved=True)),
    }
    for name, nb in out.items():
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
