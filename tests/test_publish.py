"""What the published site and the README claim is true: the status table's rows name notebooks, presets, figures and
loaders that exist (figures equal to the committed results), its two copies are what `tools/status_table.py` makes
now, and the GitHub workflows that test and publish (they cannot run here) are well formed and call only what the
repository has."""
import importlib
import importlib.util
import json
import re
import shlex
import statistics

import pytest
import yaml

from conftest import ROOT

MISSION = ["LatteGAN", "GeNeVA-GAN", "AttnGAN", "PasteGAN", "Semantic Pyramid", "Learning Words by Drawing"]
WORKFLOWS = ROOT / ".github" / "workflows"
# Actions a workflow may use: GitHub's own, each pinned to a major version.
ALLOWED_ACTIONS = {"actions/checkout", "actions/setup-python", "actions/cache", "actions/configure-pages",
                   "actions/upload-pages-artifact", "actions/deploy-pages", "actions/upload-artifact"}


@pytest.fixture(scope="module")
def status():
    spec = importlib.util.spec_from_file_location("status_table", ROOT / "tools" / "status_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rows(status): return status.status_rows()


def code_object(ref: str):
    "`'lib.models.lattegan:LATTEGAN_PRESETS'` -> the object, imported here (not through the table's code)."
    mod, name = ref.split(":")
    return getattr(importlib.import_module(mod), name)


# ------------------------------------------------------------------------------------------- the status table ----------
def test_one_row_per_system_of_the_mission(rows):
    assert [r["name"] for r in rows] == MISSION


def test_claimed_notebooks_exist_and_planned_ones_do_not(rows):
    for r in rows:
        for nb in r["notebooks"] + r["shared_notebooks"]:
            assert (ROOT / "nbs" / f"{nb}.ipynb").is_file(), f"{r['name']}: claims nbs/{nb}.ipynb, which does not exist"
        for nb in r["planned_notebooks"]:
            assert not (ROOT / "nbs" / f"{nb}.ipynb").exists(), f"{r['name']}: nbs/{nb}.ipynb exists but is listed as planned"


def test_status_follows_the_code(rows):
    for r in rows:
        has_system = (ROOT / "lib" / "systems" / f"{r['module']}.py").is_file()
        has_train = (ROOT / "nbs" / f"{r['train']}.ipynb").is_file()
        has_models = (ROOT / "lib" / "models" / f"{r['module']}.py").is_file()
        has_reader = r["official_data"] is not None and code_object(r["official_data"]["ref"]) is not None
        assert r["status"] == ("built" if has_system and has_train else
                               "in progress" if has_system or has_train or has_models or has_reader else "planned"), r["name"]
        if r["status"] == "built": assert r["train"] in r["notebooks"]
    built = {r["name"] for r in rows if r["status"] == "built"}
    assert {"LatteGAN", "GeNeVA-GAN"} <= built   # the systems on main today


def test_claimed_presets_are_the_codes(rows):
    for r in rows:
        for what, p in r["presets"].items():
            presets = code_object(p["ref"])
            assert isinstance(presets, dict) and p["keys"] == sorted(presets), f"{r['name']} {what}: {p['keys']} vs {p['ref']}"
    for name in ("LatteGAN", "GeNeVA-GAN"):
        row = next(r for r in rows if r["name"] == name)
        assert {"cpu-demo", "paper"} <= set(row["presets"]["model"]["keys"]) and "cpu-demo" in row["presets"]["train"]["keys"]
    from lib.systems.geneva import MODEL_PRESETS   # the model presets named are the ones training uses
    for r in rows:
        if "model" in r["presets"] and r["module"] in MODEL_PRESETS:
            assert code_object(r["presets"]["model"]["ref"]) is MODEL_PRESETS[r["module"]]


def _summary(data: dict, label: str, series: str) -> dict:
    return data if isinstance(data.get(series), list) else data[label]


def test_figures_equal_the_committed_results(status, rows):
    for r in rows:
        h = status.HEADLINES[next(s for s in status.SYSTEMS if s["name"] == r["name"]).get("headline", "geneva")]
        series, metrics = h["series"], h["metrics"]
        for f in r["figures"]:
            path = ROOT / f["file"]
            assert path.is_file(), f"{r['name']}: figure from {f['file']}, which does not exist"
            run = _summary(json.loads(path.read_text()), f["label"], series)
            last = run[series][-1]
            assert f["step"] == last["step"] and f["value"] == {k: last[k] for k in metrics}, (r["name"], f)
            floor = run[h["floor_key"]] if "floor_key" in h else {k: last[h["floor_prefix"] + k] for k in metrics}
            assert f["floor"] == {k: floor[k] for k in metrics} and f["floor"], (r["name"], f)
            data = json.loads(path.read_text())
            seeds = [v[series][-1] for k, v in data.items() if k.startswith(f"{f['label']}, seed")] \
                if series not in data else []
            if f["over_seeds"]:
                assert f["seeds"] == len(seeds) >= 2
                for k, (m, sd) in f["over_seeds"].items():
                    assert m == pytest.approx(statistics.mean(s[k] for s in seeds))
                    assert sd == pytest.approx(statistics.stdev(s[k] for s in seeds))
            else: assert len(seeds) < 2, f"{f['label']}: {len(seeds)} seed runs in {f['file']} but no spread shown"
    # what the committed summary holds today shows up
    long = json.loads((ROOT / "nbs" / "results" / "geneva_cpu_long.json").read_text())
    for name in ("LatteGAN", "GeNeVA-GAN"):
        row = next(r for r in rows if r["name"] == name)
        assert any(f["file"] == "nbs/results/geneva_cpu_long.json" and f["step"] == long[name]["geneva"][-1]["step"]
                   for f in row["figures"]), f"{name}: its geneva_cpu_long.json figure is missing"
    assert all(not r["figures"] for r in rows if r["status"] == "planned")
    attngan = json.loads((ROOT / "nbs" / "results" / "attngan_main_job.json").read_text())["AttnGAN"]
    row = next(r for r in rows if r["name"] == "AttnGAN")
    assert [f["step"] for f in row["figures"]] == [attngan["rprecision"][-1]["step"]], "AttnGAN: its main-job figure is missing"


def test_figures_are_rendered_as_committed(status, rows):
    table = status.status_markdown(rows)
    for r in rows:
        line = next(l for l in table.splitlines() if l.startswith(f"| **{r['name']}**"))
        for f in r["figures"]:
            if f["over_seeds"]:
                shown = " · ".join(f"{k} {m:.3f} ± {sd:.3f}" for k, (m, sd) in f["over_seeds"].items())
                assert f"{shown} over {f['seeds']} seeds at step {f['step']:,}" in line
            else: assert " · ".join(f"{k} {f['value'][k]:.3f}" for k in f["metrics"]) + f" at step {f['step']:,}" in line
            assert f"{f['floor_name']}: " + " · ".join(f"{k} {f['floor'][k]:.3f}" for k in f["metrics"]) in line


def test_official_loaders_claimed_exist(rows):
    for r in rows:
        if r["official_data"]: assert code_object(r["official_data"]["ref"]) is not None
        if r["official_weights"]: assert callable(code_object(r["official_weights"]))
        elif importlib.util.find_spec(f"lib.models.{r['module']}") is not None:
            assert not hasattr(importlib.import_module(f"lib.models.{r['module']}"), "load_official"), r["name"]
    latte = next(r for r in rows if r["name"] == "LatteGAN")
    assert latte["official_data"] and latte["official_weights"] == "lib.models.lattegan:load_official"
    assert all(not r["official_data"] and not r["official_weights"] for r in rows if r["status"] == "planned")


def test_readme_and_landing_page_show_the_table_the_code_makes_now(status):
    new = status.block(status.status_markdown())
    for path in status.TARGETS:
        assert status.read_block(path) == new, \
            f"{path.relative_to(ROOT)}: the status table is stale: run python tools/status_table.py --write"


def test_write_replaces_only_the_block(status, tmp_path):
    readme = (ROOT / "README.md").read_text()
    copy = tmp_path / "README.md"
    copy.write_text(readme.replace(status.read_block(ROOT / "README.md"), status.block("| old |")))
    assert status.write_block(copy, status.block("| new |"))
    assert copy.read_text() == readme.replace(status.read_block(ROOT / "README.md"), status.block("| new |"))
    assert not status.write_block(copy, status.block("| new |"))   # unchanged: not rewritten
    with pytest.raises(ValueError, match="expected one block"): status.replace_block("no markers", "x")


# --------------------------------------------------------------------------------------------------- publishing ----------
def workflow(name: str) -> dict:
    wf = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in wf: wf["on"] = wf.pop(True)   # YAML 1.1 reads the key `on` as true
    return wf


def drawlab_subcommands() -> set[str]:
    text = (ROOT / "drawlab").read_text()
    case = text[text.index('case "$cmd" in'):text.index("esac")]
    return set(re.findall(r"^  ([a-z]+)\)", case, re.M))


def check_run(command: str, where: str) -> list[str]:
    "Every command line of a `run:` calls a file of the repository (a drawlab sub-command) on paths that exist."
    bad = []
    for line in command.strip().splitlines():
        words = shlex.split(line)
        if not words: continue
        exe = ROOT / words[0]
        if not (words[0].startswith(("./", ".ci/", "tools/")) and exe.is_file()):
            bad.append(f"{where}: `{line}` does not start with a script of the repository")
            continue
        if words[0] == "./drawlab" and (len(words) < 2 or words[1] not in drawlab_subcommands()):
            bad.append(f"{where}: `{line}`: ./drawlab has the sub-commands {sorted(drawlab_subcommands())}")
        for w in words[1:]:
            if ("/" in w or w.endswith((".py", ".ipynb"))) and not w.startswith("-") and not (ROOT / w).exists():
                bad.append(f"{where}: `{line}` names {w}, which does not exist")
    return bad


@pytest.mark.parametrize("name", ["test.yml", "docs.yml"])
def test_workflow_is_well_formed(name):
    wf = workflow(name)
    assert {"name", "on", "jobs"} <= set(wf), f"{name}: needs name, on and jobs"
    bad = []
    for job_name, job in wf["jobs"].items():
        assert "runs-on" in job and isinstance(job.get("steps"), list) and job["steps"], f"{name}:{job_name}: runs-on and steps"
        for i, step in enumerate(job["steps"]):
            where = f"{name}:{job_name}:step {i + 1}"
            assert ("uses" in step) != ("run" in step), f"{where}: exactly one of uses / run"
            if "uses" in step:
                m = re.fullmatch(r"([\w.-]+/[\w.-]+)@(v\d+)", step["uses"])
                if not m or m.group(1) not in ALLOWED_ACTIONS:
                    bad.append(f"{where}: uses {step['uses']}: allowed are {sorted(ALLOWED_ACTIONS)} at a major version (@vN)")
            else:
                bad += check_run(step["run"], where)
    assert not bad, "\n".join(bad)


def steps_of(wf: dict) -> list[dict]: return [s for job in wf["jobs"].values() for s in job["steps"]]


def test_test_workflow_runs_the_readme_command():
    wf = workflow("test.yml")
    assert "push" in wf["on"] and "pull_request" in wf["on"]
    steps = steps_of(wf)
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))["with"]["python-version"]
    assert str(python) == "3.11" and "Python 3.11" in (ROOT / "README.md").read_text()
    runs = [s["run"].strip() for s in steps if "run" in s]
    assert runs == ["./drawlab test"] and "./drawlab test" in (ROOT / "README.md").read_text()


def test_docs_workflow_deploys_the_site_to_pages():
    tomllib = pytest.importorskip("tomllib")
    wf = workflow("docs.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    perms = {**wf.get("permissions", {}), **{k: v for job in wf["jobs"].values() for k, v in job.get("permissions", {}).items()}}
    assert perms.get("pages") == "write" and perms.get("id-token") == "write"
    steps = steps_of(wf)
    runs = [s["run"].strip() for s in steps if "run" in s]
    assert "./drawlab docs" in runs
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert {"actions/checkout", "actions/configure-pages", "actions/upload-pages-artifact", "actions/deploy-pages"} <= set(uses)
    doc_path = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["nbdev"]["doc_path"]
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == doc_path == "_docs"   # where ./drawlab docs writes
    deploy = next(j for j in wf["jobs"].values() if any(s.get("uses", "").startswith("actions/deploy-pages") for s in j["steps"]))
    assert deploy.get("environment", {}).get("name") == "github-pages" and deploy.get("needs")


def test_docs_say_where_the_site_lives():
    tomllib = pytest.importorskip("tomllib")
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    owner, repo = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", urls["Repository"]).groups()
    assert urls["Documentation"].rstrip("/") == f"https://{owner.lower()}.github.io/{repo}", "Documentation is not the repository's GitHub Pages"
    readme = (ROOT / "README.md").read_text()
    docs = readme[readme.index("## Docs and tutorials"):readme.index("## Layout")]
    assert urls["Documentation"] in docs and ".github/workflows/docs.yml" in docs
