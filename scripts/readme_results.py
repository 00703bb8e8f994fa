"""Regenerate the measured-results section of README.md from results/*.json.

    .venv/bin/python scripts/readme_results.py

Everything between the markers `<!-- results:begin -->` and `<!-- results:end -->` is
rewritten; each table says which command, commit, date and machine produced it.
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def kws_demo(r):
    return "\n".join([
        "### On-device training, keyword spotting (`make demo`)",
        "",
        f"`{r['command']}` — commit {r['commit']}, {r['date']}, {r['machine']}",
        "",
        "| board | model | trains | samples trained | held-out acc. before | after | peak SRAM | flash | arena |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {r['board']} | {r['model']} | {r['scheme']} | {r['samples_trained']} | {100 * r['acc_before']:.1f} % "
        f"| {100 * r['acc_after']:.1f} % | {r['peak_sram_bytes'] / 1024:.1f} KiB | {r['flash_bytes'] / 1024:.1f} KiB "
        f"| {r['arena_bytes'] / 1024:.1f} KiB |",
        "",
        "![accuracy curve](results/kws_demo.png)",
    ])


TABLES = {"kws_demo.json": kws_demo}


def main():
    parts = []
    for name, render in TABLES.items():
        path = ROOT / "results" / name
        if path.exists():
            parts.append(render(json.loads(path.read_text())))
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    body = "\n\n".join(parts) if parts else "_No results yet: run the benchmark commands._"
    readme.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")
    print(f"updated {readme} from {len(parts)} result file(s)")


if __name__ == "__main__":
    main()
