"""How fast the LatteGAN training data arrives: turns/s from `GeNeVATurns` with its embeddings, through a
DataLoader with the system's collate function, at the `paper` preset's 128 px.

    python bench/geneva_loader.py [--data data/synthetic/iclevr] [--batch 64] [--workers 0 2 4] [--batches 30]

The question it answers is whether the input pipeline can keep a GPU fed: compare the turns/s printed here
with `bench/lattegan_step.py`'s turn-images/s on the GPU (the pipeline needs to be well above it). Uses the
dataset folder's `clevr_train.h5` and its `clevr_train_embeddings_<tag>.h5` (`--tag`, default tirg-minilm; run
`nbs/create_embeddings.ipynb` first). Loading order is shuffled as in training.
"""
import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lib.core import data_root
from lib.data.embeddings import TurnEmbeddings, default_embeddings_path
from lib.data.geneva import GeNeVATurns
from lib.systems.lattegan import LatteGANSystem


def measure(turns, batch, workers, batches):
    loader = DataLoader(turns, batch_size=batch, shuffle=True, num_workers=workers,
                        collate_fn=LatteGANSystem.collate_fn, persistent_workers=False,
                        generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)                                   # worker start-up and file opening are not the steady state
    t = time.perf_counter()
    n = 0
    for _ in range(batches):
        b = next(it)
        n += len(b["target"])
    return n / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(data_root() / "synthetic" / "iclevr"))
    ap.add_argument("--tag", default="tirg-minilm")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    folder = Path(args.data)
    emb = default_embeddings_path(folder, "iclevr", "train", args.tag)
    turns = GeNeVATurns(folder / "clevr_train.h5", args.size, embeddings=TurnEmbeddings(emb))
    print(f"{turns!r}\ntorch {torch.__version__}, {torch.get_num_threads()} threads in the main process")
    for w in args.workers:
        rate = measure(turns, args.batch, w, args.batches)
        print(f"workers {w}: {rate:8.0f} turns/s  (batch {args.batch}, {args.size} px, {args.batches} batches)")


if __name__ == "__main__":
    main()
