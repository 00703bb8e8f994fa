"""README's command-line table stays true: every option a row shows is one its command's --help lists."""
import contextlib
import io
import re
import runpy
import sys

import pytest

from conftest import ROOT


def cli_rows():
    """(command, subcommand or None, options shown) for each python command of the table."""
    text = (ROOT / "README.md").read_text()
    start = text.index("## Command-line tools")
    table = text[start:text.index("\n## ", start + 1)]
    rows = []
    for line in table.splitlines():
        if not line.startswith("| `python "):
            continue
        cell = line.split(" | ")[0]
        shown = " ".join(re.findall(r"`([^`]+)`", cell))
        m = re.match(r"python (?:-m ([\w.]+)|([\w/]+\.py))(?: (plan|show)\b)?", shown)
        options = sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", shown)))
        rows.append((m.group(1) or m.group(2), m.group(3), options))
    return rows


def help_text(command, sub):
    """What `command [sub] --help` prints (stdout and stderr), run in this process."""
    out = io.StringIO()
    argv = [command] + ([sub] if sub else []) + ["--help"]
    old = sys.argv
    try:
        sys.argv = argv
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), pytest.raises(SystemExit) as exit_:
            if command.endswith(".py"):
                runpy.run_path(str(ROOT / command), run_name="__main__")
            else:
                runpy.run_module(command, run_name="__main__", alter_sys=True)
    finally:
        sys.argv = old
    code = exit_.value.code
    return out.getvalue() + (code if isinstance(code, str) else "")   # sys.exit("...") prints its message


ROWS = cli_rows()


def test_the_table_lists_the_tools():
    commands = {c for c, _, _ in ROWS}
    assert len(ROWS) >= 20
    assert {"host_tools/stream.py", "host_tools/pull.py", "search.run", "model_prep.bake"} <= commands


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")   # a module the suite imported already
@pytest.mark.parametrize("command,sub,options", ROWS, ids=[f"{c} {s or ''}".strip() for c, s, _ in ROWS])
def test_every_option_the_readme_shows_exists(command, sub, options):
    text = help_text(command, sub)
    assert "usage" in text.lower(), text[-500:]
    missing = [o for o in options if o not in text]
    assert not missing, f"README shows {missing} for {command} {sub or ''}, which its --help does not list"
