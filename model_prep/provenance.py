"""Where a result came from: the git commit, date, machine and command line of a run.

Every benchmark and summary writes these beside its figures (README tables quote them).
"""
import datetime
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git_commit():
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return r.stdout.strip() or "unknown"


def run_record(command=None, machine_extra=""):
    """{"commit", "date", "machine", "command"} of this run."""
    machine = f"{platform.node()} {platform.machine()}" + (f", {machine_extra}" if machine_extra else "")
    return {"commit": git_commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine, "command": command or " ".join(sys.argv)}


def write_result(result, out, plot, figure_of=None):
    """The benchmarks' ending: result as JSON at `out`, plot(figure_of or result, out.png), one line saying so."""
    import json
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result if figure_of is None else figure_of, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
