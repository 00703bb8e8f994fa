"""argparse types for the command lines' numbers: a count or a rate out of range is one usage error naming
the option and what it takes (`--evals 0` used to end in a ZeroDivisionError, `--lr -1` baked a firmware
that climbs the loss).

    ap.add_argument("--evals", type=at_least(1), default=600)
    ap.add_argument("--lr", type=positive, default=0.02)
"""
import argparse


def at_least(low):
    """An integer >= low."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def positive(text):
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value
