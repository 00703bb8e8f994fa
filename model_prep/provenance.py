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


def cpu(cpuinfo="/proc/cpuinfo"):
    """The CPU's model name and the widest vector extension PyTorch's CPU kernels dispatch on (AVX512, AVX2 or
    none), e.g. "Intel(R) Xeon(R) Processor, AVX512": float training takes other rounding paths on another
    extension, so a pre-trained model (and every table keyed by its int8 export) is reproducible only on a CPU
    like the one that made it. "" where /proc/cpuinfo cannot be read (not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return ""
    field = lambda name: next((line.split(":", 1)[1].strip() for line in text.splitlines()   # noqa: E731
                               if line.split(":", 1)[0].strip() == name), "")
    flags = set(field("flags").split())
    isa = "AVX512" if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags else "AVX2" if "avx2" in flags else ""
    return ", ".join(x for x in (field("model name"), isa) if x)


def run_record(command=None, machine_extra=""):
    """{"commit", "date", "machine", "command"} of this run; the machine names its CPU (see cpu)."""
    machine = ", ".join(x for x in (f"{platform.node()} {platform.machine()}", cpu(), machine_extra) if x)
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
