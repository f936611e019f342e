"""bench/device_check.sh --dry-run: on a CPU, in seconds, every input of the GPU check is there and its plan fits 8 minutes;
a missing or incomplete pack is named with the command that makes it."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from lib.systems.geneva import dataset_paths
from lib.systems.tirg import default_tirg_dir

pytestmark = pytest.mark.skipif(not (shutil.which("bash") and shutil.which("timeout")), reason="needs bash and coreutils")
BUDGET_S = 480


def dry_run(*args):
    env = {k: v for k, v in os.environ.items() if k != "OUT"}   # $OUT would become the output folder
    return subprocess.run(["bash", "bench/device_check.sh", "--dry-run", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**env, "PYTHON": sys.executable})


@pytest.fixture
def pack(tmp_path):
    """A folder laid out as `tools/geneva_long.py --pack` writes it, its names taken from the library (so a renamed file
    shows up here). Placeholders: the dry run reads names, sizes and two JSON files, nothing it would have to load."""
    folder = tmp_path / "iclevr-pack"
    encoder = default_tirg_dir(folder)                                    # <pack>/tirg-minilm/
    encoder.mkdir(parents=True)
    dataset_paths(folder, "iclevr", "train")["evaluator"].write_bytes(b"placeholder")
    for name in ("tirg.json", "config.json", "tokenizer_config.json", "tokenizer.json"):
        (encoder / name).write_text('{"placeholder": true}')
    (encoder / "model.safetensors").write_bytes(b"placeholder")
    return folder


def test_dry_run_finds_every_input_and_plans_within_8_minutes(pack, tmp_path):
    out = tmp_path / "out"
    p = dry_run("--pack", str(pack), "--out", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "dry run: every input is there" in p.stdout
    total = int(re.search(r"^total (\d+) s worst case", p.stdout, re.M).group(1))
    assert total <= BUDGET_S, p.stdout
    steps = re.findall(r"^ +\d+\. (\S+) +(\d+) s  (.*)$", p.stdout, re.M)
    names, commands = [n for n, _, _ in steps], {n: c for n, _, c in steps}
    assert names[:2] == ["env", "lattegan_step"] and names[-2:] == ["long", "loader"], names
    assert sum(int(limit) for _, limit, _ in steps) < total                # each limit, plus the time to kill it
    assert "bench/lattegan_step.py --preset paper --batch 64 --compile" in commands["lattegan_step"]
    assert f"tools/geneva_long.py --data-dir {pack} --out {out}/long" in commands["long"]
    assert "--batch 64 --num-workers 8" in commands["long"]
    assert f"bench/geneva_loader.py --data {pack} --batch 64 --workers 0 8" in commands["loader"]
    for script in ("bench/lattegan_step.py", "tools/geneva_long.py", "bench/geneva_loader.py"):
        assert f"ok   {script} --help" in p.stdout, p.stdout                # it answers --help and takes the plan's options
    assert not out.exists()                                                  # a dry run writes nothing


def test_dry_run_names_a_missing_pack_and_the_command_that_makes_it(tmp_path):
    missing = tmp_path / "no-pack"
    p = dry_run("--pack", str(missing), "--out", str(tmp_path / "out"))
    assert p.returncode != 0
    assert f"pack folder {missing} is missing" in p.stderr, p.stderr
    assert f"python tools/geneva_long.py --pack {missing}" in p.stderr, p.stderr


def test_dry_run_names_what_an_incomplete_pack_lacks_and_an_over_budget_plan(pack):
    (default_tirg_dir(pack) / "model.safetensors").unlink()
    p = dry_run("--pack", str(pack), "--long-minutes", "3.5")
    assert p.returncode != 0
    assert "lacks tirg-minilm/model.safetensors" in p.stderr and f"--pack {pack}" in p.stderr, p.stderr
    assert f"over the budget of {BUDGET_S} s" in p.stderr, p.stderr


def test_benches_past_the_budget_are_deferred_with_their_command(pack):
    p = dry_run("--pack", str(pack), "--budget", "480")
    assert p.returncode == 0, p.stdout + p.stderr
    deferred = re.findall(r"^ +- +(\S+) +- +deferred: over the budget with the steps above; alone: (.*)$", p.stdout, re.M)
    assert any(n == "attngan_step" and "bench/attngan_step.py --preset paper-birds --batch 32 --compile" in c
               for n, c in deferred), p.stdout
    roomy = dry_run("--pack", str(pack), "--budget", "900")
    assert re.search(r"^ +\d+\. attngan_step ", roomy.stdout, re.M) and "deferred" not in roomy.stdout, roomy.stdout
