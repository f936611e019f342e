"""Does a Learning Words by Drawing model know an attribute, or only not from one word? The attribute tests of the
run's dataset folder asked in three spoken forms: the word said three times (the tests the runs report, from
`repetition_audios/`), the tested object's phrase ('a large red metal cube', every attribute named), and the whole
scene's caption with the named value ('there is a small blue metal cube and a large red metal cube'). The phrase and
caption are spoken here by one espeak-ng voice (en-us, 150 words a minute), read as the training captions are.

    python tools/wbd_attribute_forms.py outputs/runs/words-by-drawing [more runs] [--json out.json]

Per run and form: the share of tests where the spoken form scores the picture with the named value highest, per
attribute and their mean (chance 1/8, 1/3, 1/2, 1/2); with `--json`, also each run's recipe and its last reported
recall@10 and attribute mean. The forms are scored on the run's newest checkpoint. About 20 s a run on 2 threads (400 tests, 800 utterances).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lib.apps.spoken import SpokenSession  # noqa: E402
from lib.core import read_json, write_json  # noqa: E402
from lib.data.audio_clevr import SAMPLE_RATE, log_mel  # noqa: E402
from lib.runs import load_run  # noqa: E402
from lib.synth.audio_clevr import CATEGORIES  # noqa: E402
from lib.synth.speech import Voice, speak  # noqa: E402
from lib.systems.words_by_drawing import attribute_scores, load_attribute_tests  # noqa: E402

FORMS = ("word", "phrase", "caption")
VOICE = Voice("en-us", 150, 50)


def described(objects: list[dict]) -> list[str]:
    "Each object's phrase with every attribute, in CLEVR's order."
    return ["a " + " ".join(o[a] for a in ("size", "color", "material", "shape")) for o in objects]


def spoken_forms(record: dict) -> dict[str, str]:
    "What the phrase and caption forms say for one test record of `attribute_tests/index.json`."
    objects = [dict(o) for o in record["objects"]]
    objects[record["object"]][record["category"]] = record["named"]
    phrases = described(objects)
    return {"phrase": phrases[record["object"]], "caption": "there is " + " and ".join(phrases)}


def spoken(text: str) -> torch.Tensor:
    "(40, T): `text` said by `VOICE`, as the training captions are read."
    return log_mel(speak(text, VOICE, SAMPLE_RATE).astype(np.float32) / 32768, SAMPLE_RATE)


def form_scores(run: Path) -> dict[str, dict[str, float]]:
    """Per form, the share of right answers per attribute and their mean: the run's own attribute test
    (`attribute_scores`), its `word` swapped for the phrase or the caption."""
    session = SpokenSession.from_run(run)
    folder = Path(session.folder)
    tests = load_attribute_tests(folder, session.image_size)                   # the word form: the run's own tests
    records = read_json(folder / "attribute_tests" / "index.json")            # in the same order, with the scenes
    asked = {"word": tests}
    for form in FORMS[1:]:
        asked[form] = [{**t, "word": spoken(spoken_forms(r)[form])} for t, r in zip(tests, records)]
    out = {}
    for form, form_tests in asked.items():
        scores = attribute_scores(session.model, form_tests)
        out[form] = {c: round(scores[c], 3) for c in (*CATEGORIES, "mean") if c in scores}
    return out


RECIPE = ("negatives", "steps", "lr", "optimizer", "impostors", "model_overrides", "edit_units", "seed")


def run_record(run: Path) -> dict:
    "What the table needs of a run besides the forms: its recipe, and its last recall@10 and attribute mean (as it reported them)."
    loaded = load_run(run)
    r, a = loaded.final("retrieval"), loaded.final("attributes")
    return {"recipe": {k: loaded.params.get(k) for k in RECIPE}, "evaluated_step": r.get("step"),
            "recall@10": [round(r[k], 3) for k in ("audio_to_image@10", "image_to_audio@10") if k in r],
            "attribute_mean": round(a["mean"], 3) if "mean" in a else None}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="Learning Words by Drawing run folders")
    ap.add_argument("--json", type=Path, help="also keep the table here: these runs are added to (or replace, by name) the runs it holds")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    table = {}
    print(f"{'run':28s} {'form':8s} " + " ".join(f"{c:>8s}" for c in (*CATEGORIES, "mean")))
    for run in args.runs:
        table[run.name] = {**form_scores(run), "run": run_record(run)}
        for form in FORMS:
            row = table[run.name][form]
            print(f"{run.name:28s} {form:8s} " + " ".join(f"{row[c]:8.3f}" for c in (*CATEGORIES, "mean")))
    if args.json: write_json(args.json, {**(read_json(args.json) if args.json.exists() else {}), **table})


if __name__ == "__main__":
    main()
