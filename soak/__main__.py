"""``python -m soak``: run the soak for each algorithm, print the summary, optionally write benchmarks/SOAK.md.

Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import EPISODES, SoakConfig
from .harness import run_soak
from .report import as_markdown, as_text, passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of traffic per algorithm (default 300)")
    parser.add_argument("--algorithms", default="RS256,ES256", help="comma-separated (default RS256,ES256)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--callers", type=int, default=3)
    parser.add_argument("--episodes", default=",".join(EPISODES), help=f"scenario order, cycled ({','.join(EPISODES)})")
    parser.add_argument("--write", type=Path, help="write the result file (markdown) here")
    parser.add_argument("--json", type=Path, help="also write the summaries as JSON here")
    args = parser.parse_args(argv)
    episodes = tuple(e for e in args.episodes.split(",") if e)
    unknown = set(episodes) - set(EPISODES)
    if unknown:
        parser.error(f"unknown episode(s): {', '.join(sorted(unknown))}")
    summaries = []
    for index, algorithm in enumerate(a.strip() for a in args.algorithms.split(",") if a.strip()):
        config = SoakConfig(algorithm=algorithm, duration=args.duration, seed=args.seed + index, callers=args.callers, episodes=episodes)
        print(f"soak {algorithm}: {args.duration:.0f} s of traffic ...", flush=True)
        summaries.append(run_soak(config))
        print(as_text(summaries[-1:]), flush=True)
    if args.write:
        command = "python -m soak " + " ".join(argv if argv is not None else sys.argv[1:])
        args.write.write_text(as_markdown(summaries, command), encoding="utf-8")
        print(f"wrote {args.write}")
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=2, default=str) + "\n", encoding="utf-8")
    return 0 if passed(summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
