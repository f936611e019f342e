"""Speed of the synthetic GeNeVA generators: images per second for the whole `make_iclevr` / `make_codraw`
(drawing + writing the dialogue files, the detector files and objects.txt), single-threaded.

    .venv/bin/python bench/synth_speed.py [--episodes 2000] [--seed 0]

"images" are the turn images of the dialogue files (i-CLEVR: 5 per episode; CoDraw: one per turn); the detector
files hold copies of the same images and are not counted again. images/s/core divides by the process's CPU
time, which on a busy machine is the fairer figure; wall-clock images/s is printed beside it.
"""
import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"          # before numpy / torch load: one core

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

torch.set_num_threads(1)


def count_turn_images(out_dir: Path, prefix: str) -> int:
    "Turn images in `<prefix>_{train,val,test}.h5` of `out_dir`."
    n = 0
    for split in ("train", "val", "test"):
        path = out_dir / f"{prefix}_{split}.h5"
        if not path.exists(): continue
        with h5py.File(path, "r") as f:
            n += sum(f[k]["images"].shape[0] for k in f.keys() if k.isdigit())
    return n


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def report(label: str, images: int, wall: float, cpu: float) -> None:
    print(f"  {label:<28} {images:>7} images  wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
          f"{images / wall:8.0f} images/s  {images / cpu:8.0f} images/s/core")


def bench_generator(name: str, make, prefix: str, episodes: int, seed: int, parts=None) -> None:
    n_train, n_val, n_test = int(episodes * 0.8), episodes // 10, episodes - int(episodes * 0.8) - episodes // 10
    print(f"{name}: {episodes} episodes ({n_train}/{n_val}/{n_test})")
    with tempfile.TemporaryDirectory() as d:
        # one small run first: imports, sprite caches and the like are a once-per-process cost, shown apart
        _, wall, cpu = timed(lambda: make(Path(d) / "warm", 20, 0, 0, seed + 1))
        print(f"  {'warm-up (20 episodes)':<28} {'':>7}         wall {wall:7.2f} s  cpu {cpu:7.2f} s")
        out, wall, cpu = timed(lambda: make(Path(d) / "run", n_train, n_val, n_test, seed))
        images = count_turn_images(Path(out), prefix)
        report(f"make_{name} (draw + write)", images, wall, cpu)
        if name == "iclevr":
            out, wall, cpu = timed(lambda: make(Path(d) / "run_nodet", n_train, n_val, n_test, seed, detector_files=False))
            report("  ... detector_files=False", count_turn_images(Path(out), prefix), wall, cpu)
        if parts is not None:
            for label, fn in parts(n_train, seed):
                n, wall, cpu = timed(fn)
                report(label, n, wall, cpu)


def iclevr_parts(n: int, seed: int):
    "make_iclevr's train split taken apart: drawing alone, then writing what was drawn."
    from lib.synth.iclevr import ENTITIES, N_TURNS, background_raw, iclevr_episodes
    from lib.data.geneva import write_geneva_h5
    held = {}
    def draw():
        held["eps"] = iclevr_episodes(n, seed, "train"); return n * N_TURNS
    def write():
        with tempfile.TemporaryDirectory() as d:
            write_geneva_h5(Path(d) / "clevr_train.h5", held["eps"], "iclevr", background_raw(), ENTITIES,
                            detector_path=Path(d) / "clevr_obj_train.h5")
        return n * N_TURNS
    def write_main():
        with tempfile.TemporaryDirectory() as d:
            write_geneva_h5(Path(d) / "clevr_train.h5", held["eps"], "iclevr", background_raw(), ENTITIES)
        return n * N_TURNS
    return [("  train: draw only", draw), ("  train: write (+ detector)", write), ("  train: write (no detector)", write_main)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=2000, help="episodes per generator, split 80/10/10")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"torch threads {torch.get_num_threads()}, numpy {np.__version__}, h5py {h5py.__version__}, "
          f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    from lib.synth.iclevr import make_iclevr
    bench_generator("iclevr", make_iclevr, "clevr", args.episodes, args.seed, iclevr_parts)
    if importlib.util.find_spec("lib.synth.codraw") is not None:
        from lib.synth.codraw import make_codraw
        bench_generator("codraw", make_codraw, "codraw", args.episodes, args.seed)
    else:
        print("codraw: lib/synth/codraw.py not there yet, skipped")


if __name__ == "__main__":
    main()
