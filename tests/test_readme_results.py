"""README.md's measured-results tables are generated from results/: the committed README must be what they give."""
import shutil
import subprocess

from conftest import PY, ROOT


def test_committed_readme_matches_results():
    r = subprocess.run([PY, "scripts/readme_results.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_check_catches_a_stale_table(tmp_path):
    # a copy of the script, README and results, one figure edited: --check must refuse, then regenerate fixes it
    for part in ("scripts", "results"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("evaluations", "*.png"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    for part in ("model_prep", "search", "host_tools"):
        (tmp_path / part).symlink_to(ROOT / part)
    demo = tmp_path / "results" / "kws_demo.json"
    demo.write_text(demo.read_text().replace('"flash_bytes": ', '"flash_bytes": 1', 1))
    stale = subprocess.run([PY, "scripts/readme_results.py", "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert stale.returncode != 0 and "README.md is not what results/ give" in stale.stderr
    assert "Traceback" not in stale.stderr
    subprocess.run([PY, "scripts/readme_results.py"], cwd=tmp_path, check=True, capture_output=True)
    again = subprocess.run([PY, "scripts/readme_results.py", "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
