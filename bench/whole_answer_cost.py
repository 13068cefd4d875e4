"""What the whole-answer metric costs beside the first-token evaluation, on one task's test split.

    OMP_NUM_THREADS=1 python bench/whole_answer_cost.py            # smollm2-135m, english-french

Runs a small protocol (10 mean prompts, 2 scan prompts, FV after layer 10), then times the
first-token evaluation of every condition (:func:`~workbench.method.pipeline.evaluate_conditions`,
each prompt's prefix once, every condition a last-token variant) and the whole-answer evaluation
(:func:`~workbench.method.pipeline.evaluate_whole_answers`, one teacher-forced forward per
condition for each answer longer than its scored tokens), sharing the task-vector donors' states
with the first as :func:`~workbench.method.pipeline.run_task` does.
"""

from __future__ import annotations

import argparse
import time

import torch

from workbench.core.heads import last_token_states
from workbench.core.loading import load_model
from workbench.method.pipeline import evaluate_conditions, evaluate_whole_answers, run_task
from workbench.method.protocol import Protocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="english-french")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model, verbose=False)
    result = run_task(
        model, args.task, Protocol(n_mean_prompts=10, n_scan_prompts=2, layer=10), progress=False
    )
    sets = result.prompt_sets(model)
    common = (model, sets, result.fv, result.fv_layer, result.means)
    start = time.perf_counter()  # the donors' states are part of the first-token evaluation, as in a run
    states = last_token_states(model, sets["donors"], [result.fv_layer])[0]
    first = evaluate_conditions(*common, progress=False, states=states)
    t_first = time.perf_counter() - start
    start = time.perf_counter()
    evaluate_whole_answers(*common, first=first, progress=False, states=states)
    t_whole = time.perf_counter() - start
    multi = sum(len(e.answer_tokens) > e.n_scored for e in sets["test_zero_shot"])
    print(
        f"{args.task}, {first['icl'].n} test queries ({multi} with multi-token answers): "
        f"first-token evaluation {t_first:.1f} s, whole-answer {t_whole:.1f} s"
    )
    print(result.table())


if __name__ == "__main__":
    main()
