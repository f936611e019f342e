"""Per-step overhead of lib.train.Engine versus a bare hand-written loop doing the same work.

Both train the ring-of-Gaussians GAN of lib.systems.toy2d (same networks, batch, phases: D, G and lazy R1 every 4 steps,
EMA of G); the engine adds its bookkeeping (phase schedule, rank-invariant noise, statistics, progress, logging).
Steps are timed after a warm-up; setup and the final checkpoint are excluded. Rounds alternate bare/engine and
the median is reported.

    python bench/engine_overhead.py [--steps 300] [--rounds 5] [--hidden 128] [--batch 256]
"""
import argparse
import statistics
import tempfile
import time

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from lib.core import RunDir
from lib.losses import hinge_d_loss, hinge_g_loss, r1_penalty
from lib.systems.toy2d import RingDataset, Toy2DSystem
from lib.train import Callback, Engine, TrainConfig

WARMUP = 20


def bare_loop(steps, batch, hidden):
    system = Toy2DSystem(hidden=hidden)
    G, D, opts = system.G, system.D, system.optimizers()
    ema = AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(0.99), use_buffers=True)
    loader = DataLoader(RingDataset(4096), batch_size=batch, shuffle=True, drop_last=True)
    step, t0 = 0, None
    while step < steps:
        for real in loader:
            if step == WARMUP: t0 = time.perf_counter()
            D.requires_grad_(True); G.requires_grad_(False)
            opts["D"].zero_grad(set_to_none=True)
            with torch.no_grad(): fake = G(torch.randn(batch, system.z_dim))
            hinge_d_loss(D(real).squeeze(1), D(fake).squeeze(1)).backward(); opts["D"].step()
            D.requires_grad_(False); G.requires_grad_(True)
            opts["G"].zero_grad(set_to_none=True)
            hinge_g_loss(D(G(torch.randn(batch, system.z_dim))).squeeze(1)).backward(); opts["G"].step()
            if step % 4 == 0:
                D.requires_grad_(True); G.requires_grad_(False)
                opts["D"].zero_grad(set_to_none=True)
                x = real.detach().requires_grad_(True)
                (r1_penalty(D(x), x) * 0.05 * 4).backward(); opts["D"].step()
            G.requires_grad_(False); D.requires_grad_(False)
            ema.update_parameters(G)
            step += 1
            if step == steps: break
    return (time.perf_counter() - t0) / (steps - WARMUP)


class _Clock(Callback):
    def on_step_end(self, engine):
        if engine.step == WARMUP: self.t0 = time.perf_counter()
        if engine.step == engine.cfg.steps: self.t1 = time.perf_counter()


def engine_loop(steps, batch, hidden):
    clock = _Clock()
    with tempfile.TemporaryDirectory() as d:
        cfg = TrainConfig(steps=steps, batch_size=batch, ema_decay=0.99, log_every=50, ckpt_every=10**9,
                          progress=True, resume=None)
        Engine(Toy2DSystem(hidden=hidden), RingDataset(4096), RunDir("bench", root=d), cfg, callbacks=[clock]).fit()
    return (clock.t1 - clock.t0) / (steps - WARMUP)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=256)
    a = ap.parse_args()
    bare, eng = [], []
    for _ in range(a.rounds):
        bare.append(bare_loop(a.steps, a.batch, a.hidden))
        eng.append(engine_loop(a.steps, a.batch, a.hidden))
    b, e = statistics.median(bare), statistics.median(eng)
    print(f"toy2d GAN, hidden {a.hidden}, batch {a.batch}, {a.steps - WARMUP} timed steps x {a.rounds} rounds, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"bare loop : {b * 1e3:8.3f} ms/step   (rounds: {', '.join(f'{x * 1e3:.2f}' for x in bare)})")
    print(f"engine    : {e * 1e3:8.3f} ms/step   (rounds: {', '.join(f'{x * 1e3:.2f}' for x in eng)})")
    print(f"overhead  : {(e - b) / b * 100:+.1f}%  ({(e - b) * 1e6:+.0f} us/step)")


if __name__ == "__main__":
    main()
