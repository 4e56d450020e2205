"""`python -m dse_lightning.table PROFILE [--stage STAGE] [--out DIR] [--override K=V ...]`: what
`make reproduce-table` runs.

Paths default to the project's layout, relative to where it runs (the Makefile runs it at the root).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .profile import PROFILES, load_profile

STAGES = ("cells", "transfer", "render", "all")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Regenerate the paper's table from engine runs (resumable).")
    p.add_argument("profile", help="a profile name (in --profiles) or a YAML path")
    p.add_argument("--stage", choices=STAGES, default="all", help="what to do (default: all)")
    p.add_argument("--out", type=Path, default=None, help="output dir (default: <profiles>/../<name>)")
    p.add_argument("--workers", type=int, default=None, help="parallel cell runners (default: the profile's)")
    p.add_argument("--profiles", type=Path, default=PROFILES, help=f"profile folder (default: {PROFILES})")
    p.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="published numbers (default: <profiles>/../reference.yaml)",
    )
    p.add_argument(
        "--bench", type=Path, default=Path("experiments/bench/results.json"), help="`make bench` results"
    )
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="added to every cell's overrides, after the profile's common ones (repeatable): e.g. a dry run "
        "of the paper profile on a tiny backbone and local hub-layout data",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    profile = load_profile(args.profile, args.profiles)
    profile.common = [*profile.common, *args.override]
    out = args.out or args.profiles.parent / profile.name
    baseline = None  # checked before any cell runs: an unknown name fails now, not after hours
    if profile.baseline:  # its table where --out would default for it
        baseline = (load_profile(profile.baseline, args.profiles), args.profiles.parent / profile.baseline)
    failed: list[str] = []
    if args.stage in ("cells", "all"):
        from .cells import run_cells

        failed = run_cells(profile, out, args.workers or profile.workers)
    if args.stage in ("transfer", "all"):
        from .transfer import run_transfer

        run_transfer(profile, out)
    if args.stage in ("render", "all"):
        from .render import render

        render(profile, out, args.reference or args.profiles.parent / "reference.yaml", args.bench, baseline)
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}; run again to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
