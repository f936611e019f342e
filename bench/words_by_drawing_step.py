"""Time and peak memory of one Learning Words by Drawing training step (the retrieval model, and with `-edited` the GAN-edited negatives).

    python bench/words_by_drawing_step.py                  # CPU: paper @ batch 8 (1024 frames, 128 px) on 2 threads,
                                                           # in-batch and GAN-edited, then cpu-demo @ batch 32; each in
                                                           # its own process
    python bench/words_by_drawing_step.py --preset paper --batch 128 --compile   # on a GPU: bf16 autocast, eager and
                                                                                 # with the retrieval model compiled

A step is what the engine runs per batch: both encoders on the batch (VGG-16 to 8×8 cells at 128 px; the large
DAVEnet audio network on 1024 frames), the similarity matrix, the sampled margin-rank loss, backward and the SGD
step. `-edited` adds the paper's negatives: the matched region of every pair, the drawing network (the progressive
generator and its encoder) and the segmenter on the batch, the drawing again with the concept's units switched off
inside the region (`lib.systems.words_by_drawing.ConceptEditor`), and both drawings through the picture encoder.
Weights are random (the time does not depend on them) and inputs are random spectrograms of full length and random
pictures, so the data pipeline is not timed. Reference point (issue 25): the official code takes 3.63 s and 1.95 GB
peak RSS for one step at batch 8, 1024 frames, on 2 CPU threads.
"""
import os
import sys

import torch

from lib.models.progan import build as build_gan, build_encoder
from lib.models.segmenter import ConceptSegmenter
from lib.models.words_by_drawing import build, wbd_config
from lib.synth.audio_clevr import ATTRIBUTES, CONCEPTS
from lib.systems.words_by_drawing import ConceptEditor, Drawer, RetrievalModel, WordsByDrawingSystem
from lib.train import Nets
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench/measure.py, however this script is run
from measure import bench_main, engine_step, time_steps  # noqa: E402

FRAMES = 1024


def bench(preset: str, batch: int, steps: int, warmup: int, device, compile_: bool = False, bf16: bool = False):
    model_preset, edited = preset.removesuffix("-edited"), preset.endswith("-edited")
    cfg = wbd_config(model_preset)
    torch.manual_seed(0)
    model = RetrievalModel(*build(model_preset)).to(device)
    editor = None
    if edited:
        G, _ = build_gan(model_preset)
        drawer = Drawer(build_encoder(G), G).to(device)
        segmenter = ConceptSegmenter({c: len(v) for c, v in ATTRIBUTES.items()}, 16).to(device)
        units = G.layer_shape("layer4")[0]
        editor = ConceptEditor(drawer.requires_grad_(False), segmenter.requires_grad_(False),
                               {c: list(range(k, units, len(CONCEPTS)))[:units // 4] for k, c in enumerate(CONCEPTS)})
    system = WordsByDrawingSystem(model, editor=editor)
    opts = system.optimizers()
    nets = Nets(model=torch.compile(model) if compile_ else model)
    g = torch.Generator().manual_seed(0)
    S = cfg["image_size"]
    b = {"image": torch.randn(batch, 3, S, S, generator=g).to(device), "audio": (torch.rand(batch, 40, FRAMES, generator=g) * -80).to(device),
         "n_frames": torch.full((batch,), FRAMES, device=device), "concepts": (torch.rand(batch, len(CONCEPTS), generator=g) < 0.4).to(device)}
    return time_steps(lambda i: engine_step(system, nets, {"model": model}, opts, b, i, batch, device, bf16), steps, warmup, device)


def main():
    bench_main(__file__, __doc__, bench, "paper, paper-edited, cpu-demo or cpu-demo-edited", "paper",
               [["--preset", "paper", "--batch", "8"], ["--preset", "paper-edited", "--batch", "8"],
                ["--preset", "cpu-demo", "--batch", "32"]], cpu_batch=8, gpu_batch=128,
               reference="official code, batch 8 and 1024 frames on 2 threads (issue 25): 3.63 s/step, 1.95 GB peak RSS")


if __name__ == "__main__":
    main()
