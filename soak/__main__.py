"""``python -m soak``: run the soak for each algorithm, print the summary, optionally write benchmarks/SOAK.md.

With ``--regions us-east-1,eu-west-1`` (primary first) it runs the soak in those regions instead
(:mod:`soak.regions`; its result file is benchmarks/SOAK-REGIONS.md). Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator_local.regions import parse_regions

from . import region_summary
from .config import EPISODES, SoakConfig
from .harness import run_soak
from .region_episodes import REGION_EPISODES
from .regions import RegionsConfig, regions_soak_defaults, run_regions_soak
from .report import as_markdown, as_text, passed


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of traffic per algorithm (default 300)")
    parser.add_argument("--algorithms", default="RS256,ES256", help="comma-separated (default RS256,ES256)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--callers", type=int, default=3)
    parser.add_argument("--regions", help="run the soak in these regions, primary first (us-east-1,eu-west-1)")
    parser.add_argument("--region-callers", type=int, default=1, help="with --regions: callers per region of each client kind (default 1)")
    parser.add_argument(
        "--episodes",
        help=f"scenario order, cycled (default {','.join(EPISODES)}; with --regions {','.join(REGION_EPISODES)})",
    )
    parser.add_argument("--write", type=Path, help="write the result file (markdown) here")
    parser.add_argument("--json", type=Path, help="also write the summaries as JSON here")
    args = parser.parse_args(argv)
    known = REGION_EPISODES if args.regions else EPISODES
    episodes = tuple(e for e in (args.episodes or ",".join(known)).split(",") if e)
    unknown = set(episodes) - set(known)
    if unknown:
        parser.error(f"unknown episode(s): {', '.join(sorted(unknown))}")
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    command = "python -m soak " + " ".join(argv if argv is not None else sys.argv[1:])
    load_before = load_average()
    summaries: list[dict[str, Any]] = []
    if args.regions:
        try:
            regions = parse_regions(args.regions)
        except ConfigurationError as exc:
            parser.error(str(exc))
        if len(regions) < 2:
            parser.error("--regions: the soak in several regions needs two or more (the first is the primary)")
        for index, algorithm in enumerate(algorithms):
            soak = replace(regions_soak_defaults(), algorithm=algorithm, duration=args.duration, seed=args.seed + index)
            config = RegionsConfig(
                regions=regions, soak=soak, episodes=episodes, plain_callers=args.region_callers, regional_callers=args.region_callers
            )
            print(f"soak in {', '.join(regions)} {algorithm}: {args.duration:.0f} s of traffic ...", flush=True)
            summaries.append(run_regions_soak(config))
            print(region_summary.as_text(summaries[-1:]), flush=True)
        text = region_summary.as_markdown(summaries, command, f"{load_before} / {load_average()}") if args.write else ""
        ok = region_summary.passed(summaries)
    else:
        for index, algorithm in enumerate(algorithms):
            config_1 = SoakConfig(algorithm=algorithm, duration=args.duration, seed=args.seed + index, callers=args.callers, episodes=episodes)
            print(f"soak {algorithm}: {args.duration:.0f} s of traffic ...", flush=True)
            summaries.append(run_soak(config_1))
            print(as_text(summaries[-1:]), flush=True)
        text = as_markdown(summaries, command) if args.write else ""
        ok = passed(summaries)
    if args.write:
        args.write.write_text(text, encoding="utf-8")
        print(f"wrote {args.write}")
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=2, default=str) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
