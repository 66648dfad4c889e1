"""CLI: ``dropout-bench validate`` (parse, translate, call ``sweeps.validate``)."""
from __future__ import annotations

import argparse
import sys

from .args import add_backend_flags, add_config_flags, config_from_args, positive_int

VALIDATE_EXAMPLES = """examples:
  dropout-bench validate                          # 300 seeds of the seed config, 1 worker
  dropout-bench validate --seeds 500 --workers 2  # resumable: rerun the same command after a stop
  dropout-bench validate --width 64 --steps 200 --seeds 200 --no-tutorial
Writes DIR/validation.jsonl (one line per seed), validation.json and validation.md.
"""


def add_validate_command(sub) -> None:
    p = sub.add_parser("validate", help="test that the engine equals the tutorial's loop in distribution",
                       description="Train the same seeds with the engine, the reference loop (same data and "
                                   "initial weights; with nn.Dropout's masks and with the engine's) and the "
                                   "tutorial's verbatim loop, and test each final metric for equivalence "
                                   "(TOST) within a stated margin.",
                       epilog=VALIDATE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=positive_int, default=300, metavar="N", help="seeds 0..N-1 (default 300)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N", help="processes (default 1)")
    add_backend_flags(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default results/validate-<config hash>)")
    p.add_argument("--margin", type=float, default=0.02, metavar="FRACTION",
                   help="plain arms, engine vs reference: equivalence margin as a share of the reference "
                        "mean (default 0.02)")
    p.add_argument("--sd-margin", type=float, default=0.2, metavar="SD",
                   help="where randomness differs (dropout masks, the tutorial's own draws): margin in "
                        "per-seed SDs (default 0.2)")
    p.add_argument("--no-tutorial", action="store_true", help="skip the tutorial's verbatim loop")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p)
    p.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from bench import ConfigError

    from ..options import ExecutionOptions
    from ..validate import run_validation, write_validation

    cfg = config_from_args(args)  # ConfigError -> exit 2 with one line
    for name, value in (("--margin", args.margin), ("--sd-margin", args.sd_margin)):
        if not 0 < value < float("inf"):
            raise ConfigError(f"{name} {value}: must be a positive number")
    sources = ("engine", "reference", "masked") + (() if args.no_tutorial else ("tutorial",))
    out = args.out or f"results/validate-{cfg.replace(seed=0).config_hash()[:12]}"
    command = " ".join(["dropout-bench", *sys.argv[1:]]) if sys.argv[1:2] == ["validate"] else "the same command"
    try:
        options = ExecutionOptions(workers=args.workers, backend=args.backend, scheduler=args.scheduler)
        rows = run_validation(cfg, range(args.seeds), out, options=options, sources=sources, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"every finished seed is stored in {out}; resume with: {command}", file=sys.stderr)
        raise
    print(write_validation(out, rows, rel_margin=args.margin, sd_margin=args.sd_margin), end="")
    print(f"wrote {out}/validation.json and validation.md", file=sys.stderr)
    return 0
