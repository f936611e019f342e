"""Score a Semantic Pyramid run's newest checkpoint level by level, as the training's `pyramid_levels` metric does,
with the generator's standing statistics (for runs whose own evaluations used the running averages as trained).

    python tools/pyramid_rescore.py outputs/runs/sp-long --out outputs/runs/sp-long/rescored.json
    python tools/pyramid_rescore.py outputs/runs/sp-long --images 520 --reference train --draws 4 --out steadier.json

`--reference train` compares every level's drawings of all the validation pictures with the whole training split
instead of one half of the validation pictures with the other; `--draws` draws each source that many times.

The evaluation classifier is the run's own (`<data folder>/vgg16_classifier/<preset>-seed<seed + 1>.pt`); prints
the scores and writes them as JSON with the checkpoint and the command's parameters.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a Semantic Pyramid run folder")
    ap.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    ap.add_argument("--images", type=int, default=None, help="validation pictures (default: the run's eval_images)")
    ap.add_argument("--reference", choices=("val-half", "train"), default="val-half",
                    help="the real pictures of the Fréchet distances: half of the validation pictures (as in training) or the training split")
    ap.add_argument("--draws", type=int, default=1, help="pictures drawn per source and level for the Fréchet sets")
    ap.add_argument("--seed", type=int, default=0, help="the noise of the drawings (another seed: another draw, to see the spread)")
    args = ap.parse_args(argv)
    from lib.core import write_json
    from lib.systems.semantic_pyramid import classifier_file, level_scores, load_classifier, load_semantic_pyramid
    from lib.train import load_checkpoint
    system = load_semantic_pyramid(args.run)           # the EMA generator, standing statistics applied
    params = load_checkpoint(system.checkpoint)["params"]
    folder = Path(params["data_dir"])
    classes = len(system.eval_items.dataset.classes)
    evaluator = load_classifier(classifier_file(folder, params["model_preset"], params["seed"] + 1), params["model_preset"], classes)
    n = args.images or params["eval_images"]
    reference = system.standing_items if args.reference == "train" else None   # standing_items: the training split
    scores = level_scores(system, system.G, system.eval_items, evaluator, n, reference=reference, draws=args.draws, seed=args.seed)
    record = {"checkpoint": str(system.checkpoint), "step": system.step, "standing_passes": system.standing_passes,
              "reference": args.reference, "draws": args.draws, "seed": args.seed, **scores}
    write_json(args.out, record)
    print("\n".join(f"{k}: {v}" for k, v in record.items()))


if __name__ == "__main__":
    main()
