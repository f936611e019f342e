"""Time and peak memory of one PasteGAN training step (G's two paths and every loss, then both discriminators).

    python bench/pastegan_step.py                         # CPU: paper-vg @ batch 4 on 2 threads, cpu-demo @ batch 16,
                                                          # each in its own process
    python bench/pastegan_step.py --preset paper-vg --batch 32 --compile   # on a GPU: bf16 autocast, eager and
                                                                           # with G compiled, images/s

A step is what the engine runs per batch, in the official order: the G phase (L1, box regression, crop matching,
both adversarial terms and auxiliary classification on both paths, and the three perceptual terms through VGG-19),
then the D phase on the pictures G drew in its phase (the image discriminator on real and both fakes, the object
discriminator on every object cut out of them), each with its Adam step. VGG-19 has random weights here (the time does not depend
on them). Inputs are random scene graphs of Visual Genome's shapes (179 object classes, 46 predicates, 8 objects and
6 relations a picture, plus the pictures' nodes and `__in_image__` edges) with random crops, so the data pipeline
and the crop selector are not timed. Reference point (issue 23): the official code takes 28.5 s and 6.29 GB peak RSS
for one `paper-vg` step at batch 4 on 2 CPU threads.
"""
import os
import sys

import torch

from lib.models.pastegan import build, pastegan_config
from lib.nn.pretrained import VGGPerceptual
from lib.systems.pastegan import PasteGANSystem
from lib.train import Nets
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench/measure.py, however this script is run
from measure import bench_main, engine_step, time_steps  # noqa: E402

VG_OBJECTS, VG_PREDICATES, OBJECTS, RELATIONS = 179, 46, 8, 6   # sg2im's VG vocabulary; objects and relations a picture


def make_batch(batch: int, image_size: int, crop_size: int, device) -> dict:
    g = torch.Generator().manual_seed(0)
    objs, boxes, triples, obj_to_img = [], [], [], []
    for n in range(batch):
        first = n * (OBJECTS + 1)
        objs += torch.randint(1, VG_OBJECTS, (OBJECTS,), generator=g).tolist() + [0]     # 0: __image__
        xy = torch.rand(OBJECTS, 2, generator=g) * 0.6
        boxes.append(torch.cat([torch.cat([xy, xy + 0.2 + torch.rand(OBJECTS, 2, generator=g) * 0.2], 1), torch.tensor([[0., 0, 1, 1]])]))
        s, o = torch.randint(0, OBJECTS, (2, RELATIONS), generator=g)
        p = torch.randint(1, VG_PREDICATES, (RELATIONS,), generator=g)
        triples.append(torch.stack([s + first, p, o + first], 1))
        triples.append(torch.stack([torch.arange(OBJECTS) + first, torch.zeros(OBJECTS, dtype=torch.long),
                                    torch.full((OBJECTS,), first + OBJECTS)], 1))        # __in_image__ edges
        obj_to_img += [n] * (OBJECTS + 1)
    O = len(objs)
    b = dict(images=torch.rand(batch, 3, image_size, image_size, generator=g) * 2 - 1, objs=torch.tensor(objs),
             boxes=torch.cat(boxes), triples=torch.cat(triples), obj_to_img=torch.tensor(obj_to_img),
             crops=torch.rand(O, 3, crop_size, crop_size, generator=g) * 2 - 1,
             original_crops=torch.rand(O, 3, crop_size, crop_size, generator=g) * 2 - 1)
    return {k: v.to(device) for k, v in b.items()}


def bench(preset: str, batch: int, steps: int, warmup: int, device, compile_: bool = False, bf16: bool = False):
    import torchvision
    cfg = pastegan_config(preset)
    G, D_img, D_obj = build(preset, VG_OBJECTS, VG_PREDICATES)
    vgg = VGGPerceptual(torchvision.models.vgg19().features, "random weights")
    system = PasteGANSystem(G, D_img, D_obj, perceptual=vgg)
    for m in (G, system.D, vgg): m.to(device)
    opts = system.optimizers()
    nets = Nets(G=torch.compile(G) if compile_ else G, D=system.D)
    b = make_batch(batch, cfg["image_size"], cfg["crop_size"], device)
    return time_steps(lambda i: engine_step(system, nets, {"G": G, "D": system.D}, opts, b, i, batch, device, bf16),
                      steps, warmup, device)


def main():
    bench_main(__file__, __doc__, bench, "paper-vg, paper-coco or cpu-demo", "paper-vg", [["--preset", "paper-vg", "--batch", "4"], ["--preset", "cpu-demo", "--batch", "16"]], cpu_batch=4, gpu_batch=32,
               reference="official code, paper-vg @ batch 4 on 2 threads (issue 23): 28.5 s/step, 6.29 GB peak RSS")


if __name__ == "__main__":
    main()
