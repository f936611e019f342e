"""Time and peak memory of one AttnGAN training step (three stage discriminators, then G with the DAMSM loss).

    python bench/attngan_step.py                          # CPU: paper-birds @ batch 4 on 2 threads, cpu-demo @ batch 16,
                                                          # each in its own process
    python bench/attngan_step.py --preset paper-birds --batch 32 --compile   # on a GPU: bf16 autocast, eager and
                                                                             # with G compiled, images/s

A step is what the engine runs per batch: the D phase (one generator forward without gradients, each stage's
discriminator on real, fake and mismatched pairs) and the G phase (the stages' adversarial terms through the updated
discriminators, DAMSM's word and sentence losses of the last stage through the frozen Inception-v3 image encoder,
and KL), each with its Adam step. Inputs are random pictures and captions of CUB's shapes (5,450 words, 18 per
caption), so the data pipeline is not timed. Reference point (issue 22): the official code takes 8.39 s and
4.05 GB peak RSS for one `paper-birds` step at batch 4 on 2 CPU threads.
"""
import os
import sys

import torch

from lib.models.attngan import attngan_config, build_damsm, build_gan
from lib.systems.attngan import AttnGANSystem
from lib.train import Nets
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench/measure.py, however this script is run
from measure import bench_main, engine_step, time_steps  # noqa: E402

CUB_WORDS, WORDS_NUM = 5450, 18   # the official birds vocabulary and caption length


def make_batch(batch: int, sizes: list[int], device) -> dict:
    g = torch.Generator().manual_seed(0)
    lens = torch.randint(6, WORDS_NUM + 1, (batch,), generator=g).sort(descending=True).values
    caption = torch.randint(1, CUB_WORDS, (batch, WORDS_NUM), generator=g)
    caption[torch.arange(WORDS_NUM)[None] >= lens[:, None]] = 0
    b = dict(images=[torch.rand(batch, 3, s, s, generator=g) * 2 - 1 for s in sizes], caption=caption, caption_len=lens,
             class_id=torch.arange(batch))
    return {k: ([t.to(device) for t in v] if isinstance(v, list) else v if k == "caption_len" else v.to(device))
            for k, v in b.items()}


def bench(preset: str, batch: int, steps: int, warmup: int, device, compile_: bool = False, bf16: bool = False):
    cfg = attngan_config(preset)
    text, image = build_damsm(preset, CUB_WORDS)
    G, Ds = build_gan(preset)
    system = AttnGANSystem(G, Ds, text.requires_grad_(False).eval(), image.requires_grad_(False).eval(),
                           damsm_weight=5.0, z_dim=cfg["z_dim"])
    for m in (G, system.D, text, image): m.to(device)
    opts = system.optimizers()
    nets = Nets(G=torch.compile(G) if compile_ else G, D=system.D, G_ema=G, text=text, image=image)
    b = make_batch(batch, [s.image_size for s in Ds], device)

    return time_steps(lambda i: engine_step(system, nets, {"G": G, "D": system.D}, opts, b, i, batch, device, bf16),
                      steps, warmup, device)


def main():
    bench_main(__file__, __doc__, bench, "paper-birds, paper-coco or cpu-demo", "paper-birds", [["--preset", "paper-birds", "--batch", "4"], ["--preset", "cpu-demo", "--batch", "16"]], cpu_batch=4, gpu_batch=32,
               reference="official code, paper-birds @ batch 4 on 2 threads (issue 22): 8.39 s/step, 4.05 GB peak RSS")


if __name__ == "__main__":
    main()
