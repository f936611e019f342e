"""What the step benchmarks share: their options, one engine step, the timing, this process's peak RSS and allocator (Linux)."""
import torch


def allocator() -> str:
    "The malloc this process runs on: tcmalloc when preloaded, else glibc's."
    with open("/proc/self/maps") as f: return "tcmalloc" if "tcmalloc" in f.read() else "glibc malloc"


def reset_peak_rss():
    "Start this process's peak RSS afresh from its current RSS (Linux >= 4.0: write 5 to clear_refs)."
    with open("/proc/self/clear_refs", "w") as f: f.write("5")


def peak_rss_gib() -> float:
    "This process's peak resident set size (VmHWM), GiB."
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 2**20


def step_parser(doc: str, presets: str):
    "The options every step benchmark takes (`presets` names the choices of --preset)."
    import argparse
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--preset", default=None, help=f"one configuration only: {presets}")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--bf16", action="store_true", help="CPU: bf16 autocast (with --preset)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads")
    ap.add_argument("--compile", action="store_true", help="also time a torch.compile'd generator")
    ap.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)   # a child run: no header line
    return ap


def engine_step(system, nets, modules: dict, opts: dict, batch: dict, i: int, batch_size: int, device,
                bf16: bool = False) -> None:
    "One training step as `Engine._run_phase` runs it (without the process group and the logging): each phase's net trainable alone, its loss, backward, step, gradients freed."
    from torch.nn.utils import parametrize
    from lib.train import StepContext
    carry = {}   # what a phase leaves for the step's later phases, as the engine keeps it
    for ph in system.phases:
        for name, m in modules.items(): m.requires_grad_(name == ph.net)
        opts[ph.net].zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16), parametrize.cached():
            loss, _ = system.loss(ph, batch, nets, StepContext(i, ph, 0, batch_size, 0, batch_size, device, carry))
        loss.backward()
        opts[ph.net].step()
        opts[ph.net].zero_grad(set_to_none=True)


def time_steps(step, steps: int, warmup: int, device) -> tuple[float, float]:
    "(seconds a step, peak memory GiB: this process's RSS on the CPU, allocated memory on a GPU) of `step(i)` after `warmup` steps."
    import time
    if device.type == "cpu": reset_peak_rss()   # this run's peak only, not an earlier run's in the same process
    for i in range(warmup): step(i)
    if device.type == "cuda": torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for i in range(steps): step(warmup + i)
    if device.type == "cuda": torch.cuda.synchronize()
    sec = (time.perf_counter() - t) / steps
    return sec, torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else peak_rss_gib()


def report(preset: str, batch: int, label: str, sec: float, peak: float, device, unit: str = "images") -> None:
    "One figure line: configuration, seconds a step, throughput, peak memory (GPU memory on a GPU, RSS on the CPU)."
    memory = "GiB GPU memory" if device.type == "cuda" else "GiB peak RSS"
    print(f"{preset:11} batch {batch:3} {label:26} {sec:8.3f} s/step  {batch / sec:8.1f} {unit}/s  {peak:6.2f} {memory}", flush=True)


def bench_main(script: str, doc: str, bench, presets: str, default_preset: str, cpu_configs: list[list[str]],
               cpu_batch: int, gpu_batch: int, reference: str) -> None:
    """The command line of a two-player step bench (AttnGAN's, PasteGAN's): without --preset on the CPU, each of
    `cpu_configs` in a process of its own (so each peak RSS is that configuration's alone), then the official
    `reference`; else the preset given (default `default_preset`): fp32 or bf16 on the CPU, bf16 eager (and compiled)
    on a GPU, each as one figure line. `bench(preset, batch, steps, warmup, device, **kw)` -> (s/step, peak GiB)."""
    import subprocess
    import sys
    args = step_parser(doc, presets).parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and args.preset is None:
        print(f"torch {torch.__version__}, device cpu, {torch.get_num_threads()} threads, {allocator()}", flush=True)
        common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads), "--quiet"]
        for extra in cpu_configs: subprocess.run([sys.executable, script, *extra, *common], check=True)
        print(reference)
        return
    if not args.quiet:
        print(f"torch {torch.__version__}, device {device}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else
                                                             f", {torch.get_num_threads()} threads, {allocator()}"))
    preset = args.preset or default_preset
    if device.type == "cuda":
        runs = [(args.batch or gpu_batch, dict(bf16=True), "eager bf16")]
        if args.compile: runs.append((args.batch or gpu_batch, dict(bf16=True, compile_=True), "compiled bf16"))
    else:
        runs = [(args.batch or cpu_batch, dict(bf16=args.bf16), "bf16 autocast" if args.bf16 else "fp32")]
        if args.compile: runs.append((args.batch or cpu_batch, dict(bf16=args.bf16, compile_=True), runs[0][2] + ", compiled"))
    for batch, kw, label in runs:
        sec, peak = bench(preset, batch, args.steps, args.warmup, device, **kw)
        report(preset, batch, label, sec, peak, device, "images")
