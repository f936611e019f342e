"""The longer GeNeVA run in one command: LatteGAN and GeNeVA-GAN on synthetic i-CLEVR on the same budget.

    python tools/geneva_long.py --out DIR                          # defaults: 6000/1000/1000 dialogues, 20 min
    python tools/geneva_long.py --pack data/iclevr-pack             # here: what a GPU machine cannot make
    python tools/geneva_long.py --data-dir data/iclevr-pack --out $OUT --minutes 3.5 --batch 64 --num-workers 8  # there

1. `lib.systems.geneva.prepare_dataset` makes what the dataset folder lacks (the dialogues, a time-limited
   evaluator, the TIRG-fine-tuned MiniLM, the embeddings) -- what `nbs/train_lattegan.ipynb` does, except that
   TIRG gets the `cpu-long` preset (2000 steps, every layer): the main job's 200-step `cpu-demo` encoder barely
   beats copying the source's features, which starves LatteGAN of the text (see nbs/results_geneva.ipynb).
2. LatteGAN trains for `--minutes` of wall clock (`time_limit_s`), then GeNeVA-GAN for exactly as many steps of
   the same batch: one budget of steps and turns for both, as the ordering asks. Both first get the same warm start
   (`--warm-start-steps`, default the preset's: `cpu-demo` 1500 steps toward the target at lr 1e-3;
   `paper` none), outside that
   budget. Both are evaluated every `--eval-every` steps on `--eval-dialogues` validation dialogues, next to the
   copy-previous floor.
   With `--side-by-side` both train at once instead, one thread each, for the same `--minutes` of wall clock
   (evaluations inside it): one budget of time, each system taking the steps its own speed gives. That is how
   the `cpu-long` comparison of `nbs/results_geneva.ipynb` was made:
       python tools/geneva_long.py --out DIR --preset cpu-long --side-by-side --minutes 100
3. Each run's `params.json`, `metrics.jsonl` and last dialogue strip are copied to `DIR/<run>/` (flat: a device
   machine's $OUT returns two folder levels), and the table is printed. `nbs/results_geneva.ipynb` with
   `runs_root=DIR` turns them into its table, budget and curves.

A device machine has no MiniLM (it comes from PyPI here): `--pack DIR` writes what it needs and cannot make there
-- the evaluator and the TIRG-fine-tuned encoder in bfloat16 (half the size, to fit the device tool's 64 MiB) --
as a dataset folder whose dialogues the device regenerates from the same seed. `data/` is git-ignored: name the
pack folder in the device tool's `carry`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lib.core import data_root, outputs_root
from lib.runs import load_run
from lib.systems.geneva import dataset_paths, prepare_dataset
from lib.systems.lattegan import train_lattegan
from lib.systems.tirg import default_tirg_dir, describe_tirg, read_tirg_info

LABELS = {"lattegan": "LatteGAN", "geneva_gan": "GeNeVA-GAN"}


def pack(folder: Path, out: Path) -> Path:
    "Copy the evaluator and the TIRG encoder (weights in bfloat16) of `folder` into `out`, a dataset folder to carry."
    import torch
    from lib.nn.text import load_text_encoder
    paths = dataset_paths(folder, "iclevr", "train")
    encoder = default_tirg_dir(folder)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(paths["evaluator"], out / paths["evaluator"].name)
    # the weights are written again below; tirg.pt is the TIRG head, which embedding does not need
    shutil.copytree(encoder, out / encoder.name, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "tirg.pt"))
    load_text_encoder(str(encoder))[1].to(torch.bfloat16).save_pretrained(out / encoder.name)
    return out


def copy_run(run: Path, out: Path) -> None:
    "params.json, metrics.jsonl and the last strip of dialogue 0, side by side in `out`."
    out.mkdir(parents=True, exist_ok=True)
    for name in ("params.json", "metrics.jsonl"): shutil.copy2(run / name, out / name)
    strips = sorted(run.glob("samples/dialogue-0-step-*.png"))
    if strips: shutil.copy2(strips[-1], out / strips[-1].name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="where each run's records are copied")
    ap.add_argument("--data-dir", type=Path, default=None, help="dataset folder (default <data root>/synthetic/iclevr-long)")
    ap.add_argument("--episodes", type=int, nargs=3, default=(6000, 1000, 1000), help="train/val/test dialogues if generated")
    ap.add_argument("--tirg-preset", default="cpu-long", help="TIRG_PRESETS key if the encoder is made here")
    ap.add_argument("--evaluator-minutes", type=float, default=5.0, help="budget of a generated evaluator")
    ap.add_argument("--minutes", type=float, default=20.0, help="LatteGAN's training budget; GeNeVA-GAN gets as many steps")
    ap.add_argument("--preset", default="cpu-demo", help="train preset of both (cpu-demo or paper)")
    ap.add_argument("--batch", type=int, default=None, help="turns per step (default: the preset's)")
    ap.add_argument("--warm-start-steps", type=int, default=None,
                    help="warm-start steps of both models' generators (default: the preset's; 0: none)")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-dialogues", type=int, default=200)
    ap.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    ap.add_argument("--runs-root", type=Path, default=None, help="parent of the run folders (default outputs/runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prefix", default="geneva-long", help="runs are named <prefix>-lattegan and <prefix>-geneva_gan")
    ap.add_argument("--side-by-side", action="store_true",
                    help="train both at once, one thread each, for --minutes each (default: one after the other, same steps)")
    ap.add_argument("--pack", type=Path, default=None, help="only write the folder a device run needs carried, then stop")
    args = ap.parse_args()
    if args.out is None and args.pack is None: ap.error("give --out (train both) or --pack (only pack)")
    folder = args.data_dir or data_root() / "synthetic" / "iclevr-long"

    t0 = time.perf_counter()
    prepare_dataset(folder, "iclevr", "lattegan", episodes=args.episodes, seed=args.seed, tirg_preset=args.tirg_preset,
                    evaluator_time_limit_s=args.evaluator_minutes * 60, log=lambda m: print(f"[prepare] {m}", flush=True))
    # an existing folder keeps its encoder: say which one it is
    print(f"[prepare] text encoder: {describe_tirg(read_tirg_info(default_tirg_dir(folder)))}", flush=True)
    print(f"[prepare] {folder} ready in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.pack: print(f"[pack] {pack(folder, args.pack)}"); return

    runs = {model: f"{args.prefix}-{model}" for model in LABELS}
    if args.side_by_side: side_by_side(args, folder, runs)
    else: one_after_the_other(args, folder, runs)
    print_table(args.out, runs)


def run_params(args, folder: Path) -> dict:
    "The `train_lattegan` parameters both systems share, from the command line (the budget aside)."
    return dict(data_dir=str(folder), out_root=args.runs_root, eval_every=args.eval_every,
                eval_dialogues=args.eval_dialogues, num_workers=args.num_workers, seed=args.seed,
                **({"batch_size": args.batch} if args.batch else {}),
                **({"warm_start_steps": args.warm_start_steps} if args.warm_start_steps is not None else {}))


def side_by_side(args, folder: Path, runs: dict[str, str]) -> None:
    "Both systems at once, each a process of its own on one thread, with the same wall-clock budget for its GAN steps."
    shared = {**run_params(args, folder), "steps": 10**9, "time_limit_s": args.minutes * 60, "progress": "false"}
    def command(model: str) -> list[str]:
        options = {"model": model, "run_name": runs[model], **shared}
        return [sys.executable, "-m", "lib.systems.lattegan", "--preset", args.preset,
                *(item for k, v in options.items() if v is not None for item in (f"--{k}", str(v)))]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    args.out.mkdir(parents=True, exist_ok=True)
    procs = {}
    for model in runs:
        with open(args.out / f"{runs[model]}.log", "w") as log:   # the child keeps its own handle
            procs[model] = subprocess.Popen(command(model), env=env, stdout=log, stderr=subprocess.STDOUT)
        print(f"[{model}] started: {' '.join(command(model))}  (log: {log.name})", flush=True)
    failed = [model for model, proc in procs.items() if proc.wait() != 0]
    if failed: raise SystemExit(f"{', '.join(failed)} failed: see {args.out}/<run>.log")
    runs_root = args.runs_root or outputs_root() / "runs"
    for model, name in runs.items(): copy_run(runs_root / name, args.out / name)


def one_after_the_other(args, folder: Path, runs: dict[str, str]) -> None:
    "LatteGAN for --minutes, then GeNeVA-GAN for as many steps: one budget of steps and turns."
    common = run_params(args, folder)
    steps = None
    for model, name in runs.items():
        t = time.perf_counter()
        budget = dict(steps=None, time_limit_s=args.minutes * 60) if steps is None else dict(steps=steps)
        engine = train_lattegan(args.preset, model=model, run_name=name, **common, **budget)
        steps = steps or engine.step
        rec = engine.run.load_params()
        print(f"[{model}] {rec['warm_start_steps']} warm-start steps ({rec.get('warm_start_s', 0):.0f} s), then "
              f"{engine.step} steps of {engine.cfg.batch_size} turns in {time.perf_counter() - t:.0f} s", flush=True)
        copy_run(engine.run.path, args.out / name)


def print_table(out: Path, runs: dict[str, str]) -> None:
    "Each system's last evaluation, and the copy-previous floor on the same dialogues."
    print(f"\n{'':52} {'AP':>6} {'AR':>6} {'F1':>6} {'RSIM':>6}")
    for model, name in runs.items():
        run = load_run(out / name)
        evals = [r for r in run.records if r.get("kind") == "eval"]
        rows = [r for r in evals if r.get("metric") == "geneva"][-1:]
        if model == "lattegan": rows = [r for r in evals if r.get("metric") == "copy_previous"][-1:] + rows
        for r in rows:
            label = ("copy previous image" if r["metric"] == "copy_previous" else
                     f"{LABELS[model]} (EMA, step {r['step']}, warm start {run.params.get('warm_start_steps', 0)})")
            print(f"{label:52} " + " ".join(f"{r[k]:6.3f}" for k in ("AP", "AR", "F1", "RSIM")))


if __name__ == "__main__":
    main()
