"""Time and peak memory of one Semantic Pyramid training step (D, then G with the semantic reconstruction and diversity terms).

    python bench/semantic_pyramid_step.py                 # CPU: paper @ batch 4 (256 px) on 2 threads, cpu-demo @ batch 16,
                                                          # each in its own process
    python bench/semantic_pyramid_step.py --preset paper --batch 32 --compile   # on a GPU: bf16 autocast, eager and
                                                                                # with G compiled, images/s

A step is what the engine runs per batch: the D phase (the real pictures' pyramid through the frozen VGG-16, each
sample's level and masks, one generator forward without gradients, D on real and fake) and the G phase (the D
phase's pyramid and masks reused, G on the batch's first half of conditions drawn twice, LSGAN through D, the fake
pictures' pyramid through VGG-16 with gradients to the pictures, semantic reconstruction and diversity), each with
its Adam step. The VGG-16 is the Places365 network's shape (365 classes) with random weights (the time does not
depend on them); inputs are random pictures, so the data pipeline is not timed. Reference point (issue 24): the
official code takes 18.3 s and 3.9 GB peak RSS for one `paper` step at batch 4 on 2 CPU threads.
"""
import os
import sys

import torch

from lib.models.semantic_pyramid import build, sp_config
from lib.nn.pretrained import VGG16Classifier
from lib.systems.semantic_pyramid import SemanticPyramidSystem
from lib.train import Nets
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench/measure.py, however this script is run
from measure import bench_main, engine_step, time_steps  # noqa: E402

PLACES_CLASSES = 365


def bench(preset: str, batch: int, steps: int, warmup: int, device, compile_: bool = False, bf16: bool = False):
    cfg = sp_config(preset)
    torch.manual_seed(0)
    vgg = VGG16Classifier(PLACES_CLASSES, **cfg["classifier"])
    G, D = build(preset, PLACES_CLASSES, vgg.level_channels)
    system = SemanticPyramidSystem(G, D, vgg)
    for m in (G, D, vgg): m.to(device)
    opts = system.optimizers()
    nets = Nets(G=torch.compile(G) if compile_ else G, D=D)
    g = torch.Generator().manual_seed(0)
    S = cfg["image_size"]
    b = {"image": (torch.rand(batch, 3, S, S, generator=g) * 2 - 1).to(device),
         "label": torch.randint(PLACES_CLASSES, (batch,), generator=g).to(device)}
    return time_steps(lambda i: engine_step(system, nets, {"G": G, "D": D}, opts, b, i, batch, device, bf16),
                      steps, warmup, device)


def main():
    bench_main(__file__, __doc__, bench, "paper or cpu-demo", "paper",
               [["--preset", "paper", "--batch", "4"], ["--preset", "cpu-demo", "--batch", "16"]], cpu_batch=4, gpu_batch=32,
               reference="official code, paper @ batch 4 on 2 threads (issue 24): 18.3 s/step, 3.9 GB peak RSS")


if __name__ == "__main__":
    main()
