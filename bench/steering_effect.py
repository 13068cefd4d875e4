"""How much does a contrastive steering vector move a model?  Score against alpha and layer.

For each built-in contrast file (``workbench/data/tasks_builtin/steering/*.json``) the vector is built
at every layer in one pass per set, then measured on the file's held-out ``test`` prompts in two ways:

- ``logit_gap``: mean next-token log-prob of the positive score words' first tokens minus the
  negative ones', at the prompt's last position, with ``alpha * v[L]`` added there (cheap: one
  forward per prompt), for every layer in ``--layers`` and alpha in ``--alphas``;
- ``generation``: greedy continuations (``--max-new-tokens``) with the vector added at the last
  prompt token and every generated one, for ``--gen-layers`` x ``--gen-alphas``; score = mean over
  prompts of (positive words - negative words) found, and the share of prompts with more positive
  than negative words.

Both also with the direction projected out after every layer (each layer's own direction), the
other way round: does removing it lower the score?  Twice: to zero along the direction
(``projected``), and to the midpoint of the two sets' means (``projected_centered``).
Writes ``runs/<model>/steering.json``
(atomically) and ``figures/<model>_steering_<contrast>.{html,png}``.

    nice -n 10 python bench/steering_effect.py --model smollm2-135m
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from workbench.base.files import write_json
from workbench.beyond.steering import SteeringVector, encode_texts, logit_gap, word_hits
from workbench.core.loading import load_model
from workbench.core.model import model_info
from workbench.data.contrasts import load_contrast
from workbench.show import figures


def generation_scores(model, sv, contrast, layer, alpha, max_new_tokens, project=False, centered=False):
    pos, neg = contrast.score_words["positive"], contrast.score_words["negative"]
    texts, diffs = [], []
    for p in contrast.test:
        text = sv.generate(model, p, layer, alpha, max_new_tokens, project=project, centered=centered)
        texts.append(text)
        diffs.append(word_hits(text, pos) - word_hits(text, neg))
    return {
        "mean_word_diff": sum(diffs) / len(diffs),
        "share_positive": sum(d > 0 for d in diffs) / len(diffs),
        "share_negative": sum(d < 0 for d in diffs) / len(diffs),
        "texts": texts,
    }


def measure(model, name, args):
    c = load_contrast(name)
    if set(c.score_words) != {"positive", "negative"} or not c.test:
        raise SystemExit(f"{name}: needs 'test' prompts and both 'score_words' lists to be scored")
    t0 = time.time()
    sv = SteeringVector.from_contrast(model, c)
    print(sv, f"(built in {time.time() - t0:.0f} s)", flush=True)
    enc = encode_texts(model, c.test, c.chat)
    pos, neg = c.score_words["positive"], c.score_words["negative"]
    n_layers = model_info(model).n_layers
    layers = [l for l in args.layers if l < n_layers]
    from workbench.core.heads import last_token_states

    resid = last_token_states(model, enc, layers).norm(dim=-1).mean(1)  # [layer] mean |resid| on test prompts
    base = float(logit_gap(model, enc, pos, neg).mean())
    grid = []
    for l in layers:
        row = [
            base if a == 0 else float(logit_gap(model, enc, pos, neg, sv.add_hooks(model, l, a)).mean())
            for a in args.alphas
        ]
        grid.append(row)
        print(
            f"  {name} logit gap, layer {l:2d}: "
            + " ".join(f"{a:+g}:{g:+.2f}" for a, g in zip(args.alphas, row)),
            flush=True,
        )
    projected = float(logit_gap(model, enc, pos, neg, sv.project_out_hooks(model)).mean())
    centered = float(logit_gap(model, enc, pos, neg, sv.project_out_hooks(model, centered=True)).mean())
    print(
        f"  {name} logit gap: no intervention {base:+.3f}, projected out {projected:+.3f}, "
        f"projected to the midpoint {centered:+.3f}",
        flush=True,
    )
    out = {
        "label": f"{c.name}: {sv.label}",
        "chat": c.chat,
        "n_positive": sv.n_positive,
        "n_negative": sv.n_negative,
        "n_test": len(c.test),
        "layers": layers,
        "alphas": list(args.alphas),
        "vector_norm": [float(sv.norms[l]) for l in layers],
        "resid_norm": resid.tolist(),
        "logit_gap": {
            "layers": layers,
            "alphas": list(args.alphas),
            "score": grid,
            "baseline": base,
            "projected": projected,
            "projected_centered": centered,
            "metric": "log p(positive words) - log p(negative words), next token",
        },
    }
    if args.gen_layers and args.max_new_tokens > 0:
        g_layers = [l for l in args.gen_layers if l < n_layers]
        plain = generation_scores(model, sv, c, None, 0.0, args.max_new_tokens)
        gen, examples = [], {"none": plain["texts"]}
        for l in g_layers:
            row = []
            for a in args.gen_alphas:
                s = plain if a == 0 else generation_scores(model, sv, c, l, a, args.max_new_tokens)
                row.append(s["mean_word_diff"])
                examples[f"L{l} alpha {a:+g}"] = s["texts"]
                print(
                    f"  {name} generation, layer {l:2d} alpha {a:+g}: word diff {s['mean_word_diff']:+.2f}, "
                    f"{s['share_positive']:.0%} positive, {s['share_negative']:.0%} negative | "
                    f"{s['texts'][0]!r}",
                    flush=True,
                )
            gen.append(row)
        proj = generation_scores(model, sv, c, None, 0.0, args.max_new_tokens, project=True)
        cent = generation_scores(model, sv, c, None, 0.0, args.max_new_tokens, project=True, centered=True)
        examples["projected out"], examples["projected to the midpoint"] = proj["texts"], cent["texts"]
        print(
            f"  {name} generation: none {plain['mean_word_diff']:+.2f}, projected out "
            f"{proj['mean_word_diff']:+.2f}, "
            f"to the midpoint {cent['mean_word_diff']:+.2f} | {proj['texts'][0]!r} | {cent['texts'][0]!r}",
            flush=True,
        )
        out["generation"] = {
            "layers": g_layers,
            "alphas": list(args.gen_alphas),
            "score": gen,
            "baseline": plain["mean_word_diff"],
            "projected": proj["mean_word_diff"],
            "projected_centered": cent["mean_word_diff"],
            "share_positive_none": plain["share_positive"],
            "share_positive_projected": proj["share_positive"],
            "max_new_tokens": args.max_new_tokens,
            "metric": "positive minus negative score words per generation",
            "examples": examples,
        }
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--contrasts", nargs="+", default=["sentiment", "sycophancy"])
    ap.add_argument("--layers", type=int, nargs="+", default=list(range(0, 30, 3)))
    ap.add_argument("--alphas", type=float, nargs="+", default=[-8, -4, -2, 0, 2, 4, 8])
    ap.add_argument("--gen-layers", type=int, nargs="*", default=[6, 12])
    ap.add_argument("--gen-alphas", type=float, nargs="+", default=[-4, 0, 4, 8])
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--out", default=None, help="default: runs/<model>/steering.json")
    ap.add_argument("--figures", default="figures")
    ap.add_argument("--formats", nargs="+", default=["html", "png"])
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    t0 = time.time()
    model = load_model(args.model)
    name = model_info(model).name
    result = {
        "model": name,
        "command": "python bench/steering_effect.py " + " ".join(argv or __import__("sys").argv[1:]),
        "contrasts": {},
    }
    out = Path(args.out or f"runs/{name}/steering.json")
    if out.exists():  # keep the contrasts an earlier run measured (this run's replace theirs)
        from workbench.base.files import read_json

        old = read_json(out)
        if old.get("model") == name:
            result["contrasts"] = {
                k: v for k, v in old.get("contrasts", {}).items() if k not in args.contrasts
            }
            result["earlier_commands"] = old.get("earlier_commands", []) + [old.get("command")]
    for c in args.contrasts:
        result["contrasts"][c] = measure(model, c, args)
        result["seconds"] = round(time.time() - t0)
        write_json(out, result)  # after every contrast, so a long run keeps what it has
        r = result["contrasts"][c]
        figures.export(
            figures.steering_figure(
                {**r["logit_gap"], "label": r["label"]}, title=f"{name}, {r['label']}: next-token logit gap"
            ),
            f"{name}_steering_{c}",
            args.figures,
            formats=args.formats,
        )
        if "generation" in r:
            figures.export(
                figures.steering_figure(
                    {**r["generation"], "label": r["label"]},
                    title=f"{name}, {r['label']}: score words in greedy generations",
                ),
                f"{name}_steering_{c}_generation",
                args.figures,
                formats=args.formats,
            )
    print(f"wrote {out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
