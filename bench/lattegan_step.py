"""Training throughput and peak memory of one LatteGAN training step (D with wrong pairs, G, R1 on reals).

    python bench/lattegan_step.py                        # CPU: paper @ batch 8 on 2 threads (fp32, then bf16
                                                         # autocast), cpu-demo @ batch 32; each in its own process
    python bench/lattegan_step.py --allocator tcmalloc   # the same with tcmalloc preloaded (Debian: libtcmalloc-minimal4)
    python bench/lattegan_step.py --preset paper --batch 64 --compile   # on a GPU: bf16 autocast, channels_last,
                                                                        # fused Adam, eager and with G compiled
    python bench/lattegan_step.py --preset cpu-demo --batch 32 --compile  # CPU: eager, then with G compiled
    python bench/lattegan_step.py --preset cpu-demo --batch 24 --threads 1 --bf16 --channels-last   # the cpu-long step

A step is what the engine runs per batch with the official schedule: the D phase (the step's one generator
forward, then one D call over real, wrong-text and fake pairs, with R1 on the reals: a double backward) and the
G phase (the same fake turns through the updated D, backpropagated into G). Inputs are random
tensors of the right shapes (768-d BERT embeddings, 24 i-CLEVR classes), so the data pipeline is not timed here.
Reference point (DESIGN/issue 4): the official code takes ~38 s and 7.9 GB peak RSS for one `paper` step at
batch 8 on 2 CPU threads.

On the CPU a good share of a `paper` step is the kernel zeroing fresh pages: glibc hands every tensor over 32 MiB
(most activations at 128 px) to mmap and back on free. A caching allocator keeps them; `--allocator tcmalloc`
re-runs the script with tcmalloc preloaded (as PyTorch's own `torch.backends.xeon.run_cpu` launcher does) and says
which allocator each figure was taken with.
"""
import ctypes.util
import os
import subprocess
import sys

import torch

from lib.systems.lattegan import LatteGANSystem
from lib.train import Nets
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # bench/measure.py, however this script is run
from measure import allocator, engine_step, report, step_parser, time_steps  # noqa: E402


def make_batch(B, S, D, T, device):
    g = torch.Generator().manual_seed(0)
    b = dict(source=torch.rand(B, 3, S, S, generator=g) * 2 - 1, target=torch.rand(B, 3, S, S, generator=g) * 2 - 1,
             sentence=torch.randn(B, D, generator=g), words=torch.randn(B, T, D, generator=g),
             word_mask=torch.arange(T)[None].expand(B, T) < T // 2, added=(torch.rand(B, 24, generator=g) < 0.05).float())
    return {k: v.to(device) for k, v in b.items()}


def bench(preset, batch, steps, warmup, device, compile_=False, channels_last=False, bf16=False, text_dim=768):
    system = LatteGANSystem(preset, "iclevr", text_dim)
    G, D = system.G.to(device), system.D.to(device)
    if channels_last: G.to(memory_format=torch.channels_last); D.to(memory_format=torch.channels_last)
    fused = device.type == "cuda"
    opts = {"G": torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.9), fused=fused),
            "D": torch.optim.Adam(D.parameters(), 4e-4, betas=(0.0, 0.9), fused=fused)}
    # torch.compile'd modules cannot be differentiated twice (AOTAutograd), and R1 is a double backward through D:
    # only the generator is compiled.
    nets = Nets(G=torch.compile(G) if compile_ else G, D=D, G_ema=G)
    b = make_batch(batch, G.image_size, text_dim, 16, device)
    if channels_last: b = {k: (v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v) for k, v in b.items()}
    return time_steps(lambda i: engine_step(system, nets, {"G": G, "D": D}, opts, b, i, batch, device, bf16),
                      steps, warmup, device)


def preload_tcmalloc():
    "Re-run this script with tcmalloc preloaded (a library cannot replace malloc once the process has started)."
    lib = ctypes.util.find_library("tcmalloc") or ctypes.util.find_library("tcmalloc_minimal")
    if lib is None: sys.exit("--allocator tcmalloc: no tcmalloc library found (Debian/Ubuntu: apt install libtcmalloc-minimal4)")
    env = {**os.environ, "LD_PRELOAD": " ".join(filter(None, [lib, os.environ.get("LD_PRELOAD")]))}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main():
    ap = step_parser(__doc__, "paper or cpu-demo")
    ap.add_argument("--allocator", choices=("default", "tcmalloc"), default="default", help="CPU memory allocator")
    ap.add_argument("--channels-last", action="store_true", help="CPU: the nets' weights and the batch NHWC (with --preset)")
    args = ap.parse_args()
    if args.allocator == "tcmalloc" and allocator() != "tcmalloc": preload_tcmalloc()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and args.preset is None:
        # Each configuration in a process of its own, so each peak RSS is that configuration's alone.
        print(f"torch {torch.__version__}, device cpu, {torch.get_num_threads()} threads, {allocator()}", flush=True)
        common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
                  "--allocator", args.allocator]
        for extra in (["--preset", "paper", "--batch", "8"], ["--preset", "paper", "--batch", "8", "--bf16"],
                      ["--preset", "cpu-demo", "--batch", "32"]):
            subprocess.run([sys.executable, __file__, *extra, *common, "--quiet"], check=True)
        return
    if not args.quiet:
        print(f"torch {torch.__version__}, device {device}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else
                                                             f", {torch.get_num_threads()} threads, {allocator()}"))
    if device.type == "cuda":
        runs = [(args.preset or "paper", args.batch or 64, dict(bf16=True, channels_last=True), "eager bf16 channels_last")]
        if args.compile: runs.append((args.preset or "paper", args.batch or 64, dict(bf16=True, channels_last=True, compile_=True), "compiled"))
    else:
        kw = dict(bf16=args.bf16, channels_last=args.channels_last)
        label = ("bf16 autocast" if args.bf16 else "fp32") + (", channels_last" if args.channels_last else "")
        runs = [(args.preset, args.batch or 8, kw, label)]
        if args.compile: runs.append((args.preset, args.batch or 8, dict(kw, compile_=True), label + ", compiled"))
    for preset, batch, kw, label in runs:
        sec, peak = bench(preset, batch, args.steps, args.warmup, device, **kw)
        report(preset, batch, label, sec, peak, device, "turn-images")


if __name__ == "__main__":
    main()
