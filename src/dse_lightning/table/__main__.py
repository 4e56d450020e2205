"""`python -m dse_lightning.table PROFILE [--stage STAGE] [--out DIR]`: what `make reproduce-table` runs."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .profile import PROFILE_DIR, load_profile

STAGES = ("cells", "transfer", "render", "all")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the paper's table from engine runs (resumable).")
    parser.add_argument("profile", help=f"a profile name ({PROFILE_DIR}) or a YAML path")
    parser.add_argument("--stage", choices=STAGES, default="all", help="what to do (default: all)")
    parser.add_argument(
        "--out", type=Path, default=None, help="output dir (default: next to the profiles, <name>/)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="parallel cell runners (default: the profile's)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    profile = load_profile(args.profile)
    out = args.out or PROFILE_DIR.parent / profile.name
    failed: list[str] = []
    if args.stage in ("cells", "all"):
        from .cells import run_cells_parallel

        failed = run_cells_parallel(profile, out, args.workers or profile.workers, args.profile)
    if args.stage in ("transfer", "all"):
        from .transfer import run_transfer

        run_transfer(profile, out)
    if args.stage in ("render", "all"):
        from .render import render

        render(profile, out)
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}; run again to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
