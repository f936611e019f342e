"""How much of a picture each level of a Semantic Pyramid run's classifier keeps, beside random classifiers of other
widths: `lib.systems.semantic_pyramid.invert_level` on the run's first validation pictures, a table of pixel L1.

    python tools/pyramid_inversion.py --run outputs/runs/semantic-pyramid
    python tools/pyramid_inversion.py --run outputs/runs/semantic-pyramid --levels pool1 pool2 --widths 1.0 1,0.25,0.25,0.25,0.25

`--widths`: random classifiers to compare, each one factor for every stage or five comma-separated factors (one per
stage) of VGG-16's channels. The run's own classifier is always the first row. One thread; about 5 s a level for the
`cpu-demo` classifier and 30-60 s for a full-width one (8 pictures, 300 steps).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lib.nn.pretrained import VGG16Classifier  # noqa: E402
from lib.systems.semantic_pyramid import invert_level, load_semantic_pyramid  # noqa: E402


def width_of(text: str) -> float | tuple[float, ...]:
    parts = [float(x) for x in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a Semantic Pyramid run folder")
    ap.add_argument("--levels", nargs="+", default=["pool1", "pool2", "pool3"])
    ap.add_argument("--widths", nargs="*", default=["1.0"], help="random classifiers to compare (see above)")
    ap.add_argument("--pictures", type=int, default=8)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--unpooled", action="store_true", help="plain L1 on the level instead of the generator's pooled loss")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    system = load_semantic_pyramid(args.run)
    pictures = torch.stack([system.eval_items[i]["image"] for i in range(args.pictures)])
    own = system.classifier
    torch.manual_seed(0)
    rows = {f"the run's classifier {own.widths}": own}
    for w in args.widths:
        net = VGG16Classifier(own.num_classes, width=width_of(w), fc_dim=own.fc_dim, grid=own.grid).requires_grad_(False)
        rows[f"random {net.widths}"] = net
    print(f"pixel L1 of {args.pictures} validation pictures recovered from one level ({args.steps} Adam steps from grey, "
          f"{'plain' if args.unpooled else 'pooled'} loss); grey is {float(pictures.abs().mean()):.3f} from them")
    print("| classifier | " + " | ".join(args.levels) + " |\n|---|" + "---|" * len(args.levels))
    for name, net in rows.items():
        found = [invert_level(net, pictures, level, args.steps, pooled=not args.unpooled) for level in args.levels]
        print(f"| {name} | " + " | ".join(f"{f['pix_L1']:.3f} (loss {f['level_loss']:.3f})" for f in found) + " |", flush=True)


if __name__ == "__main__":
    main()
