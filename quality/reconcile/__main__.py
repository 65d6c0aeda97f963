"""``python -m quality.reconcile``: reconcile two CSV files; work the finance exception queue.

    python -m quality.reconcile match receipts.csv items.csv -o allocations.csv [--accounts a.csv] [--fee 20]
    python -m quality.reconcile exceptions list [--status open|decided|resolved|all] [--reason CODE]
    python -m quality.reconcile exceptions show RECEIPT
    python -m quality.reconcile exceptions accept RECEIPT... --by NAME [--comment TEXT]
    python -m quality.reconcile exceptions reject RECEIPT... --by NAME --comment TEXT
    python -m quality.reconcile exceptions reassign RECEIPT --customer CODE [--items DOC,DOC] --by NAME

RECEIPT is the hub id (or its first 8+ characters) or the receipt number (bank serial, U8 单号)
as the workbook's 待处理 sheet shows them. Decisions take effect at the flow's next run.
"""
from __future__ import annotations

import argparse
import json
import sys

from quality.reconcile.amounts import show


def cmd_match(args) -> int:
    from quality.reconcile.csvio import match_files
    from quality.reconcile.engine import Settings

    wrong = next((f"{flag} {value} is out of range ({allowed})" for flag, value, ok, allowed in (
        ("--fee", args.fee, 0 <= args.fee <= 10000, "0 … 10000 yuan"),
        ("--window-days", args.window_days, 0 <= args.window_days <= 3660, "0 … 3660"),
        ("--max-subset", args.max_subset, 1 <= args.max_subset <= 8, "1 … 8"),
        ("--auto-confidence", args.auto_confidence, 0 < args.auto_confidence <= 1, "above 0, at most 1")) if not ok), None)
    if wrong:  # nan fails every comparison, so it lands here too
        print(f"error: {wrong}", file=sys.stderr)
        return 2
    settings = Settings(fee_tolerance_fen=round(args.fee * 100), window_days=args.window_days,
                        max_subset=args.max_subset, auto_confidence=args.auto_confidence)
    try:
        stats = match_files(args.receipts, args.items, args.output, args.accounts, settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(stats, ensure_ascii=False, indent=2))
    return 0


def cmd_exceptions(args) -> int:
    from hub import store
    from quality.reconcile import queue

    with store.engine().begin() as conn:
        if args.action == "list":
            frame = queue.rows(conn, args.status, args.reason, args.limit)
            for r in frame.itertuples(index=False):
                print(f"{r.receipt_hub_id[:12]}  {r.receipt_no or '-':<20} {str(r.value_date):<10} "
                      f"{show(r.open_fen):>15}  {str(r.payer_name or '-')[:24]:<24}  {r.reason_code:<24} {r.status}")
            print(f"({len(frame)} {args.status})")
            return 0
        if not args.receipts:
            print(f"give the receipt(s) to {'show' if args.action == 'show' else 'decide on'}", file=sys.stderr)
            return 2
        items = [i.strip() for i in (args.items or "").split(",") if i.strip()]
        try:
            for ident in args.receipts:
                if args.action == "show":
                    print(json.dumps(queue.find(conn, ident), ensure_ascii=False, indent=2, default=str))
                    continue
                out = queue.decide(conn, ident, args.action, args.by, args.comment, args.customer, items)
                print(json.dumps(out, ensure_ascii=False))
        except queue.DecisionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m quality.reconcile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("match", help="reconcile a receipts CSV against an open-items CSV")
    m.add_argument("receipts")
    m.add_argument("items")
    m.add_argument("-o", "--output", required=True)
    m.add_argument("--accounts", help="CSV of bank accounts known per customer (account, customer)")
    m.add_argument("--fee", type=float, default=20.0, help="bank fee tolerance in yuan (default 20)")
    m.add_argument("--window-days", type=int, default=180)
    m.add_argument("--max-subset", type=int, default=4)
    m.add_argument("--auto-confidence", type=float, default=0.9)
    m.set_defaults(fn=cmd_match)
    e = sub.add_parser("exceptions", help="the finance exception queue")
    e.add_argument("action", choices=["list", "show", "accept", "reject", "reassign"])
    e.add_argument("receipts", nargs="*")
    e.add_argument("--status", default="open", choices=["open", "decided", "resolved", "all"])
    e.add_argument("--reason", help="only this reason code (e.g. unknown_payer)")
    e.add_argument("--limit", type=int, default=200)
    e.add_argument("--customer", help="reassign: the U8 customer code")
    e.add_argument("--items", help="reassign: document numbers or item keys, comma-separated")
    e.add_argument("--by", default="cli", help="who decides (kept with the decision)")
    e.add_argument("--comment")
    e.set_defaults(fn=cmd_exceptions)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
