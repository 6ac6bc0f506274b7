"""``python -m chalicelib.cost estimate ...`` and ``python -m chalicelib.cost prices``: see the package's docstring."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, Sequence, TextIO

from chalicelib.cost import estimate_to_dict, load_profile, read_override, render_estimate, render_prices
from chalicelib.domain.cost import ARCHITECTURES, CHANNELS, Plan, PriceError, estimate_month, load_prices

EXIT_USAGE = 2


def main(argv: Optional[Sequence[str]] = None, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:  # argparse has written its message to stderr
        return int(exit_.code or 0)
    try:
        prices = load_prices(args.region, args.arch, args.whatsapp_market, override=read_override(args.prices_override))
        if args.command == "prices":
            out.write(render_prices(prices) + "\n")
            return 0
        plan = Plan(mentions_per_day=args.mentions_per_day, case_rate=args.case_rate, agents=args.agents,
                    channels=tuple(args.channels), days=args.days)
        profile = load_profile(args.profile)
        estimate = estimate_month(profile, plan, prices)
    except (PriceError, ValueError) as problem:
        err.write(f"error: {problem}\n")
        return EXIT_USAGE
    if args.json:
        out.write(json.dumps(estimate_to_dict(estimate), indent=2) + "\n")
    else:
        out.write(render_estimate(estimate, profile) + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.cost",
                                     description="What socialcare costs: a planned month, and the prices it uses.")
    commands = parser.add_subparsers(dest="command", required=True)
    estimate = commands.add_parser("estimate", help="price a planned month")
    estimate.add_argument("--mentions-per-day", type=_non_negative, required=True, metavar="N")
    estimate.add_argument("--case-rate", type=_share, required=True, metavar="R",
                          help="share of mentions that become cases: 0.2 or 20%%")
    estimate.add_argument("--agents", type=int, required=True, metavar="A")
    estimate.add_argument("--channels", type=_channels, default=list(CHANNELS),
                          help=f"comma-separated, of {','.join(CHANNELS)} (default: all)")
    estimate.add_argument("--days", type=int, default=30, help="days in the month (default 30)")
    estimate.add_argument("--profile", help="usage profile written by bench/cost.py (default: the shipped one)")
    estimate.add_argument("--json", action="store_true", help="the estimate as JSON, every row included")
    listing = commands.add_parser("prices", help="list the prices with their sources")
    for sub in (estimate, listing):
        sub.add_argument("--region", default="us-east-1")
        sub.add_argument("--arch", default="arm64", choices=ARCHITECTURES)
        sub.add_argument("--whatsapp-market", default="JP", help="recipients' market for WhatsApp prices (JP, US)")
        sub.add_argument("--prices-override", metavar="FILE",
                         help="JSON of the same shape as chalicelib/domain/prices.py; its entries replace ours")
    return parser


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _share(text: str) -> float:
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("a share from 0 to 1 (or 0% to 100%)")
    return value


def _channels(text: str) -> List[str]:
    chosen = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CHANNELS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"channels are some of {','.join(CHANNELS)}")
    return chosen


if __name__ == "__main__":
    sys.exit(main())
