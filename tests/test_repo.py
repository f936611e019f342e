"""The repository is what its sources say: lib/ is nbdev-export's output, notebooks are clean, CI runs the README's command."""
import json
import re
import shutil
import subprocess

from conftest import BIN, ROOT, run


def tracked(*paths):
    out = subprocess.run(["git", "ls-files", *paths], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.split()]


def test_lib_is_in_sync_with_notebooks(tmp_path):
    # Export into a copy, so that the check never rewrites the working tree.
    for name in ("nbs", "lib"): shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    run([str(BIN / "nbdev-export")], cwd=tmp_path)
    changed = [str(p.relative_to(tmp_path)) for p in sorted((tmp_path / "lib").rglob("*.py"))
               if not (ROOT / p.relative_to(tmp_path)).exists()
               or (ROOT / p.relative_to(tmp_path)).read_text() != p.read_text()]
    assert not changed, f"nbdev-export changes {changed}: run nbdev-export and commit lib/ (never edit lib/ by hand)"


def test_notebooks_are_clean(tmp_path):
    dirty = []
    for nb in tracked("nbs"):
        if nb.suffix != ".ipynb": continue
        copy = tmp_path / nb.name
        shutil.copy(nb, copy)
        run([str(BIN / "nbdev-clean"), "--fname", str(copy)], cwd=ROOT)
        if json.loads(copy.read_text()) != json.loads(nb.read_text()): dirty.append(nb.name)
    assert not dirty, f"notebooks with outputs or stray metadata: {dirty}; run nbdev-clean and commit"


def test_ci_runs_the_readme_test_command():
    ci = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines() if l.strip() and not l.startswith(("#", "set ", "cd "))]
    assert ci == ["./drawlab test"] and "./drawlab test" in (ROOT / "README.md").read_text()


def test_readme_is_rendered_from_index_notebook(tmp_path):
    run([str(BIN / "python"), "tools/render_readme.py", "--out", str(tmp_path / "README.md")])
    assert (tmp_path / "README.md").read_text() == (ROOT / "README.md").read_text(), \
        "README.md is out of date: run ./drawlab readme and commit"


def test_readme_links_reach_files_of_the_checkout():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((?![a-z]+:|#)([^)#\s]+)", readme)
    assert any(l.startswith("nbs/tutorials/") for l in links), "the tutorial list links no tutorial"
    assert "nbs/00_core.ipynb" in links, "the module table links no module notebook"
    missing = [l for l in links if not (ROOT / l).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_every_system_with_a_command_line_runs_as_a_module():
    "A systems module that defines main() is runnable as `python -m lib.systems.<name>` (its docstring says so)."
    for path in sorted((ROOT / "lib" / "systems").glob("*.py")):
        text = path.read_text()
        if "\ndef main(" in text:
            assert 'if __name__ == "__main__": main()' in text, f"{path.name}: main() but no __main__ hook"
