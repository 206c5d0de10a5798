"""The command line the benchmarks share: the script's docstring as its help, the
cudapkgs binary under test, and how many runs each timing takes the best or median of."""

import argparse


def parser(doc, runs=None, cudapkgs=True):
    """An argument parser for the benchmark described by `doc`, with `--cudapkgs` (unless
    `cudapkgs` is false) and `--runs` defaulting to `runs` (unless it is None)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if cudapkgs:
        parser.add_argument("--cudapkgs", default="target/release/cudapkgs")
    if runs is not None:
        parser.add_argument("--runs", type=int, default=runs)
    return parser
