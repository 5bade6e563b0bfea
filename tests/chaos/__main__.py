"""``make chaos``: ``python -m tests.chaos --tracks 20000 --images 500 --seed 0``.

Prints what each fault kind took to recover from, what was lost or duplicated, and last the line
``chaos scenarios= faults= lost= duplicated= recovered_p95_s=``. Exits 1 unless lost and duplicated are 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from tests.chaos.harness import ChaosConfig, run_chaos


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--tracks", type=int, default=20_000)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="times each fault kind is injected")
    parser.add_argument("--stream-frames", type=int, default=600)
    parser.add_argument("--keep", action="store_true", help="keep the state folder (logs, database)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    result = run_chaos(
        ChaosConfig(
            tracks=args.tracks,
            images=args.images,
            seed=args.seed,
            rounds=args.rounds,
            hold_s=(2.0, 8.0),
            gap_s=(2.0, 6.0),
            stream_frames=args.stream_frames,
            quiet_timeout_s=3 * 3600.0,
            keep=args.keep,
        )
    )
    for line in result.report():
        print(line)
    print(result.line(), flush=True)
    return 0 if result.lost == 0 and result.duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
