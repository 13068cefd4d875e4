"""Composition of function vectors on one model, from (cached) runs: the composition part of
`workbench figures`, alone, for one composed task.

    python bench/composition.py --model smollm2-135m --composed first-item-capitalize

Prints and writes ``runs/<model>/composition_<task>.json`` (ICL, zero-shot, the composed task's
own FV, the sum of its parts' FVs, each part alone) and ``figures/<model>_composition.{html,png}``.
"""

import argparse
import json

from workbench.base.files import write_json
from workbench.core.loading import load_model
from workbench.core.model import model_info
from workbench.method.pipeline import run_task
from workbench.show import figures
from workbench.show.report import COMPOSED_TASKS
from workbench.studies import composition


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--composed", default="first-item-capitalize", choices=sorted(COMPOSED_TASKS))
    args = ap.parse_args()
    model = load_model(args.model)
    name, parts = model_info(model).name, COMPOSED_TASKS[args.composed]
    result = composition(model, run_task(model, args.composed), [run_task(model, p) for p in parts])
    print(json.dumps(result, indent=1))
    write_json(f"runs/{name}/composition_{args.composed}.json", result)
    fig = figures.grouped_bars(
        {f"{args.composed} = {' + '.join(parts)}": result},
        title="Composing function vectors (zero-shot test accuracy)",
    )
    figures.export(fig, f"{name}_composition", "figures", ("html", "png"))


if __name__ == "__main__":
    main()
