"""The engine's promises, end to end: it learns, 2 processes equal 1, a SIGKILLed run resumes to the same weights
(leaving no temporary files and no repeated metric records, and a finished run is left alone), and a checkpoint cut
short is reported and skipped."""
import os
import signal
import subprocess
import sys
import time

import torch

from conftest import BIN, ROOT, run
from lib.core import read_jsonl
from lib.systems.toy2d import Toy2DSystem, ring_quality, train_toy2d
from lib.train import CheckpointError, list_checkpoints, load_checkpoint

# The cpu-demo sizes (hidden 128, batch 256): a run long enough to be killed halfway; the tests shorten it with --steps.
BASE = ["--preset", "cpu-demo", "--progress", "false", "--eval_every", "0"]


def toy_cmd(out_root, run_name, *extra):
    return [sys.executable, "-m", "lib.systems.toy2d", *BASE, "--out_root", str(out_root), "--run_name", run_name, *extra]


def final_state(out_root, run_name):
    ckpts = list_checkpoints(out_root / run_name / "checkpoints")
    return load_checkpoint(ckpts[-1])


def assert_same(a, b, exact=True, atol=1e-5):
    "Nested dicts/lists of tensors are equal (exactly, or to `atol`)."
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b) if exact else torch.allclose(a.float(), b.float(), atol=atol), (a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a: assert_same(a[k], b[k], exact, atol)
    elif isinstance(a, (list, tuple)):
        for x, y in zip(a, b): assert_same(x, y, exact, atol)


def test_toy_gan_learns_the_ring(tmp_path):
    system = Toy2DSystem(seed=0)
    before = ring_quality(system.G(torch.randn(10000, system.z_dim)).detach())
    engine = train_toy2d("cpu-demo", out_root=tmp_path, steps=400, eval_every=0, progress=False)
    after = [r for r in engine.run.read_metrics() if r["kind"] == "eval"][-1]
    print("before", before, "after", after)
    assert after["mean_distance"] < 0.5 * before["mean_distance"]
    assert after["modes"] >= 6 > before["modes"]


def test_two_processes_match_one(tmp_path):
    # A few steps only: the two runs differ by float summation order (~1e-7), and Adam's g/sqrt(v) turns such
    # differences in near-zero gradients into lr-sized ones over longer runs (measured: 3e-7 after 5 steps, 3e-3 after 30).
    steps = ["--steps", "5", "--batch_size", "64"]
    run(toy_cmd(tmp_path, "one", *steps))
    # Accelerate's `--multi_gpu` means "several processes through torchrun"; without GPUs they use gloo on the CPU.
    run([str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lib.systems.toy2d", *BASE,
         "--out_root", str(tmp_path), "--run_name", "two", *steps], env={"OMP_NUM_THREADS": "1"})
    one, two = final_state(tmp_path, "one"), final_state(tmp_path, "two")
    assert two["world_size"] == 2 and one["world_size"] == 1
    for key in ("nets", "ema"): assert_same(one[key], two[key], exact=False, atol=1e-5)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    args = ["--steps", "160", "--ckpt_every", "20"]
    run(toy_cmd(tmp_path, "straight", *args))
    proc = subprocess.Popen(toy_cmd(tmp_path, "killed", *args), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 300
    while not (ckpts / "step-00000040.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL); proc.wait()
    killed_at = max(int(p.stem.split("-")[1]) for p in list_checkpoints(ckpts))
    assert 40 <= killed_at < 160, killed_at
    run(toy_cmd(tmp_path, "killed", *args))  # same command: resumes from the last checkpoint
    log = (tmp_path / "killed" / "log.txt").read_text()
    assert "resumed from" in log and "step-00000160.pt" not in log
    a, b = final_state(tmp_path, "straight"), final_state(tmp_path, "killed")
    assert a["step"] == b["step"] == 160
    for key in ("nets", "ema", "optimizers", "rng"): assert_same(a[key], b[key])
    # clean recovery: no temporary files of the killed save, no metric record twice
    assert not list(ckpts.glob(".*.tmp")), list(ckpts.iterdir())
    records = lambda name: [(r["kind"], r["step"]) for r in read_jsonl(tmp_path / name / "metrics.jsonl")]
    assert records("killed") == records("straight"), (records("killed"), records("straight"))
    # the same command once more: the run is finished, nothing happens
    before = (tmp_path / "killed" / "metrics.jsonl").read_text()
    run(toy_cmd(tmp_path, "killed", *args))
    assert "already finished at step 160" in (tmp_path / "killed" / "log.txt").read_text()
    assert (tmp_path / "killed" / "metrics.jsonl").read_text() == before


def test_truncated_checkpoint_is_reported_and_skipped(tmp_path):
    run(toy_cmd(tmp_path, "straight", "--steps", "60", "--ckpt_every", "20"))
    run(toy_cmd(tmp_path, "cut", "--steps", "40", "--ckpt_every", "20"))
    last = tmp_path / "cut" / "checkpoints" / "step-00000040.pt"
    data = last.read_bytes(); last.write_bytes(data[: len(data) // 3])
    try:
        load_checkpoint(last); raise AssertionError("a truncated checkpoint loaded")
    except CheckpointError as e:
        assert "step-00000040.pt" in str(e) and "cut short" in str(e)
    p = run(toy_cmd(tmp_path, "cut", "--steps", "60", "--ckpt_every", "20"))
    log = (tmp_path / "cut" / "log.txt").read_text()
    assert "skipping a broken checkpoint" in log and "resumed from" in log and "step-00000020.pt at step 20" in log
    for key in ("nets", "ema"): assert_same(final_state(tmp_path, "straight")[key], final_state(tmp_path, "cut")[key])


# A toy2d command whose G loss turns NaN at one step (`ctx.step == BAD`, i.e. step BAD + 1 as records and checkpoints
# count), on every process or only on the one that draws the second half of the batch.
NAN_SCRIPT = """
import sys
from lib.systems import toy2d
BAD, ONLY_SECOND_HALF = int(sys.argv[1]), sys.argv[2] == "1"
class NaNAt(toy2d.Toy2DSystem):
    def loss(self, phase, real, nets, ctx):
        loss, stats = super().loss(phase, real, nets, ctx)
        if phase.name == "G" and ctx.step == BAD and not (ONLY_SECOND_HALF and ctx.offset == 0):
            loss = loss * float("nan"); stats = {**stats, "loss": loss}
        return loss, stats
toy2d.Toy2DSystem = NaNAt
toy2d.main(sys.argv[3:])
"""


def nan_cmd(tmp_path, bad, *extra, second_half=False):
    script = tmp_path / "nan_toy.py"; script.write_text(NAN_SCRIPT)
    return [str(script), str(bad), "1" if second_half else "0", *BASE, "--out_root", str(tmp_path), *extra]


def test_nan_loss_stops_the_run_at_its_step_and_keeps_the_good_checkpoints(tmp_path):
    args = ["--run_name", "nan", "--steps", "20", "--ckpt_every", "2", "--keep_ckpts", "5", "--log_every", "4"]
    p = subprocess.run([sys.executable, *nan_cmd(tmp_path, 6, *args)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0, p.stdout[-3000:]
    assert "NonFiniteError: step 7: the loss is not finite (G/loss = nan)" in p.stderr, p.stderr[-3000:]
    ckpts = tmp_path / "nan" / "checkpoints"
    assert [c.name for c in list_checkpoints(ckpts)] == [f"step-{s:08d}.pt" for s in (2, 4, 6)]
    assert not (tmp_path / "nan" / "finished.json").exists()
    assert all(r["step"] <= 6 for r in read_jsonl(tmp_path / "nan" / "metrics.jsonl"))   # no record of the NaN step
    assert "the last good checkpoint is step-00000006.pt" in (tmp_path / "nan" / "log.txt").read_text()
    run(toy_cmd(tmp_path, "nan", *args[2:]))                                                # fixed: resumes from step 6
    assert "step-00000006.pt at step 6" in (tmp_path / "nan" / "log.txt").read_text()
    assert final_state(tmp_path, "nan")["step"] == 20


def test_nan_on_one_process_stops_both(tmp_path):
    "The NaN appears on process 1 only: both processes stop at that step (no hang), and the message names the process."
    cmd = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no",
           *nan_cmd(tmp_path, 2, "--run_name", "two", "--steps", "10", "--batch_size", "64", second_half=True)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode != 0, p.stdout[-3000:]
    log = (tmp_path / "two" / "log.txt").read_text()
    assert "step 3: the loss is not finite (process 1: G/loss = nan)" in log, log
    assert list_checkpoints(tmp_path / "two" / "checkpoints") == []


def test_launch_after_the_parent_used_several_threads(tmp_path):
    """A notebook that trains or builds something with torch before `launch` forks: the children must not hang on the
    parent's OpenMP pool (they did, on the first masked assignment, before `launch` gave them one thread each)."""
    script = tmp_path / "warm.py"
    script.write_text(
        "import sys\nimport torch\nfrom lib.train import launch\n"
        "def child():\n"
        "    x, m = torch.zeros(5000, 3, 16, 16), torch.rand(5000) > 0.5\n"
        "    x[m] = 1.0\n"
        "    sys.stdout.write(f'child {torch.get_num_threads()} {float(x.mean()) > 0}\\n'); sys.stdout.flush()   # one write: no interleaving\n"
        "if __name__ == '__main__':\n"
        "    torch.set_num_threads(2); a = torch.randn(512, 512); [a @ a for _ in range(20)]\n"
        "    x, m = torch.zeros(5000, 3, 16, 16), torch.rand(5000) > 0.5; x[m] = 1.0\n"
        "    launch(child, num_processes=2)\n")
    out = run([str(BIN / "python"), str(script)], timeout=180).stdout
    assert out.count("child 1 True") == 2, out


def test_launch_after_a_fit_in_the_parent(tmp_path):
    """A notebook that fits something on the engine in its own process (a classifier) and then launches a multi-process
    fit: Accelerate refused ('the Accelerator should only be initialized inside your training function')."""
    script = tmp_path / "fit_then_launch.py"
    script.write_text(
        "import sys\nsys.path.insert(0, %r)\n"
        "from lib.systems.toy2d import train_toy2d\nfrom lib.train import launch\n"
        "def child(root):\n"
        "    e = train_toy2d('smoke', run_name='two', out_root=root, steps=2, progress=False)\n"
        "    sys.stdout.write(f'child {e.accelerator.num_processes}\\n'); sys.stdout.flush()   # one write: the children's lines do not interleave\n"
        "if __name__ == '__main__':\n"
        "    train_toy2d('smoke', run_name='one', out_root=sys.argv[1], steps=2, progress=False)\n"
        "    launch(child, args=(sys.argv[1],), num_processes=2)\n" % str(ROOT))
    out = run([str(BIN / "python"), str(script), str(tmp_path / "runs")], timeout=180).stdout
    assert out.count("child 2") == 2, out
