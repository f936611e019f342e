"""Learning Words by Drawing end to end: the training notebook with GAN-edited negatives on 2 processes with resume,
resume equal to an uninterrupted run, one optimisation step that lowers the loss on a fixed batch, and bad input
named before any work."""
import json

import pytest
import torch

from conftest import assert_one_step_lowers_each_loss
from test_notebooks import papermill


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    "A data root holding a small spoken CLEVR folder (24/8/8 items, 2 attribute tests a category)."
    from lib.synth.audio_clevr import make_audio_clevr
    root = tmp_path_factory.mktemp("data")
    make_audio_clevr(root, sizes=(24, 8, 8), tests_per_category=2, log=None)
    return root


def evals(run, metric) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("metric") == metric]


def test_notebook_trains_with_gan_edited_negatives_on_two_processes_and_resumes(tmp_path, data_root):
    out = tmp_path / "runs"
    common = dict(run_name="wbd", out_root=out, preset="smoke", data_dir=data_root, negatives="gan-edited",
                  num_processes=2, eval_every=2)
    papermill("train_words_by_drawing.ipynb", tmp_path / "a.ipynb", steps=2, **common)
    papermill("train_words_by_drawing.ipynb", tmp_path / "b.ipynb", steps=4, **common)   # the same run, longer: resumes
    run = out / "wbd"
    log = (run / "log.txt").read_text()
    assert "on 2 process(es)" in log and "resumed from" in log
    assert [e["step"] for e in evals(run, "retrieval")] == [2, 4]
    assert {f"{d}@{k}" for d in ("audio_to_image", "image_to_audio", "chance") for k in (1, 5, 10)} <= set(evals(run, "retrieval")[-1])
    attributes = evals(run, "attributes")[-1]
    assert attributes["tests"] == 8 and {"color", "shape", "material", "size", "mean", "mean_chance"} <= set(attributes)
    train = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"]
    assert all("retrieval/edited" in r for r in train)
    params = json.loads((run / "params.json").read_text())
    kept = data_root / "audio_clevrgan_synth" / "gan_editor" / "cpu-demo-seed0.pt"
    assert kept.exists() and {"drawer_l1", "segmenter_accuracy_pictures", "best_iou"} <= set(params["editor"])


def test_resume_equals_uninterrupted(tmp_path, data_root):
    from lib.systems.words_by_drawing import train_words_by_drawing
    common = dict(data_dir=str(data_root), out_root=tmp_path, progress=False, eval_every=0, negatives="gan-edited")
    straight = train_words_by_drawing("smoke", run_name="a", steps=4, **common)
    train_words_by_drawing("smoke", run_name="b", steps=2, **common)
    resumed = train_words_by_drawing("smoke", run_name="b", steps=4, **common)
    for (k, x), (_, y) in zip(straight.system.model.state_dict().items(), resumed.system.model.state_dict().items()):
        assert torch.equal(x, y), k


def test_one_step_lowers_the_loss_on_a_fixed_batch(data_root, tmp_path):
    from lib.systems.words_by_drawing import build_system, prepare, wbd_params
    # Adam's first step moves every weight by about lr: at 1e-3 it overshoots for 3 of 5 seeds of this tiny model
    p = wbd_params("smoke", data_dir=str(data_root), out_root=str(tmp_path), negatives="gan-edited", optimizer="adam", lr=1e-4)
    prepare(p, log=None)
    system, items, _ = build_system(p, log=None)
    batch = torch.utils.data.default_collate([items[i] for i in range(8)])
    def check(phase, terms): assert {"rank", "edited"} <= set(terms)
    assert_one_step_lowers_each_loss(system, batch, 8, check)


def test_bad_input_is_named_before_any_work(tmp_path):
    from lib.core import ConfigError
    from lib.systems.words_by_drawing import train_words_by_drawing, wbd_params
    with pytest.raises(ConfigError, match="negatives") as e:
        wbd_params("cpu-demo", negatives="hard", lr=-1, synthetic_sizes=[10, 10])
    assert "lr = -1" in str(e.value) and "synthetic_sizes" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="name_list_train.txt"):
        train_words_by_drawing("smoke", dataset="audio_clevrgan_synth", data_dir=str(tmp_path / "empty"), out_root=tmp_path,
                               run_name="x", progress=False)
    assert not (tmp_path / "x").exists()


def test_attribute_forms_tool_reproduces_the_runs_own_attribute_tests(tmp_path, data_root):
    "tools/wbd_attribute_forms.py: its `word` form is the test the run reports, so its shares equal the run's last evaluation."
    import subprocess
    import sys
    from pathlib import Path
    from lib.systems.words_by_drawing import train_words_by_drawing
    train_words_by_drawing("smoke", run_name="forms", data_dir=str(data_root), out_root=tmp_path, progress=False,
                           steps=2, eval_every=2)
    run, table = tmp_path / "forms", tmp_path / "forms.json"
    root = Path(__file__).resolve().parents[1]
    table.write_text(json.dumps({"earlier": {"run": {}}, "forms": {"run": {}}}))   # a table kept before: added to
    p = subprocess.run([sys.executable, str(root / "tools" / "wbd_attribute_forms.py"), str(run), "--json", str(table),
                        "--threads", "1"], capture_output=True, text=True, cwd=root)
    assert p.returncode == 0, p.stderr
    kept = json.loads(table.read_text())
    assert kept["earlier"] == {"run": {}}      # another run's row stays; this run's row is replaced
    forms = kept[run.name]
    reported = evals(run, "attributes")[-1]
    assert set(forms) == {"word", "phrase", "caption", "run"} and forms["run"]["recipe"]["steps"] == 2
    for c in ("color", "shape", "material", "size"):
        assert forms["word"][c] == round(reported[c], 3), c
        assert 0 <= forms["phrase"][c] <= 1 and 0 <= forms["caption"][c] <= 1
    assert "caption" in p.stdout and "phrase" in p.stdout
