"""``python -m quality``: the dedup review queue and the legacy-export dedup command."""
from __future__ import annotations

import argparse
import json
import sys

from hub import store


def cmd_review(args) -> int:
    from flows.customer_master import seats  # the CLI is a composition root: the bindings say who is told
    from hub.errors import ConfigurationError
    from quality import review

    with store.engine().begin() as conn:
        if args.action == "list":
            rows = review.queue(conn, args.limit)
            for r in rows:
                ev = r["evidence"] or {}
                left, right = ev.get("left", {}), ev.get("right", {})
                print(f"{r['id']:>6}  p={r['probability']:.3f}  {r['left_node']} {left.get('name')!s:<30} "
                      f"~ {r['right_node']} {right.get('name')}")
            print(f"({len(rows)} waiting)")
            return 0
        if not args.ids:
            print("give the decision id(s) to act on", file=sys.stderr)
            return 2
        try:
            told = seats()
        except ConfigurationError as exc:  # the bindings file is wrong: say so in one line
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for decision_id in args.ids:
            try:
                out = review.decide(conn, decision_id, args.action, args.by, args.comment, seats=told)
            except ValueError as exc:  # an unknown decision, or a record the hub no longer holds
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(json.dumps(out, ensure_ascii=False))
    return 0


def cmd_dedup(args) -> int:
    from flows.customer_master import seats  # an export's `source` may be a bound system's xref name
    from hub.errors import ConfigurationError
    from quality import legacy

    try:
        stats = legacy.dedup_csv(args.input, args.output, encoding=args.encoding, seats=seats())
    except (ValueError, ConfigurationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(stats, ensure_ascii=False, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m quality")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("review", help="the dedup review queue: list, merge, distinct, undo")
    r.add_argument("action", choices=["list", "merge", "distinct", "undo"])
    r.add_argument("ids", nargs="*", type=int)
    r.add_argument("--by", default="cli", help="who decides (kept with the decision)")
    r.add_argument("--comment")
    r.add_argument("--limit", type=int, default=50)
    r.set_defaults(fn=cmd_review)
    d = sub.add_parser("dedup", help="deduplicate a CSV of customer records (see docs/dedup.md)")
    d.add_argument("input")
    d.add_argument("-o", "--output", required=True)
    d.add_argument("--encoding", help="the input's encoding (default: UTF-8, else GBK/GB18030)")
    d.set_defaults(fn=cmd_dedup)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
