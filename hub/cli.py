"""``python -m hub``: the operator's command line (runs, reports, quarantine)."""
from __future__ import annotations

import argparse
import getpass
import json
import sys

from sqlalchemy import func, select

from hub import model, quarantine, report, store


def _last_runs(flow: str | None, n: int) -> list[str]:
    r = model.sync_run.c
    stmt = select(r.run_id).order_by(r.started_at.desc()).limit(n)
    if flow:
        stmt = stmt.where(r.flow == flow)
    with store.engine().begin() as conn:
        return [row[0] for row in conn.execute(stmt)]


def cmd_report(args) -> int:
    runs = [args.run] if args.run else list(reversed(_last_runs(args.flow, args.last)))
    if not runs:
        print("no runs yet")
        return 0
    for run_id in runs:
        rep = report.build(run_id)
        print(json.dumps(rep, ensure_ascii=False, indent=2, default=str) if args.json else report.render(rep))
        print()
    return 0


def _actor() -> str:
    """Who acts from the command line, for the audit trail."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli"


def entry_id(text: str) -> int:
    """A quarantine entry id as argparse takes it: a positive integer a database row can have."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an entry id (a number from `quarantine list`)") from None
    if not store.is_row_id(value):
        raise argparse.ArgumentTypeError(f"{text} is not an entry id (ids are 1 … 2^63-1)")
    return value


def cmd_quarantine(args) -> int:
    if args.action != "list" and not args.ids:
        print(f"give the id(s) of the entries to {args.action}", file=sys.stderr)
        return 2
    eng = store.engine()
    with eng.begin() as conn:
        if args.action == "list":
            rows = quarantine.listing(conn, args.flow, None if args.status == "all" else args.status, args.limit)
            for r in rows:
                print(f"{r['id']:>6}  {r['status']:<14} {r['flow']:<16} {r['system']:<5} {r['stage']:<9} "
                      f"{r['record_key']:<20} {'; '.join(r['reasons'])[:100]}")
            print(f"({len(rows)} shown)")
        elif args.action == "show":
            row = conn.execute(select(model.quarantine).where(model.quarantine.c.id == args.ids[0])).first()
            if row is None:
                print(f"no quarantine entry {args.ids[0]}", file=sys.stderr)
                return 1
            print(json.dumps(dict(row._mapping), ensure_ascii=False, indent=2, default=str))
        elif args.action == "replay":
            n = quarantine.request_replay(conn, args.ids, args.comment, actor=_actor())
            print(f"{n} entr{'y' if n == 1 else 'ies'} will be replayed by the flow's next run")
        elif args.action == "ignore":
            if not args.comment:
                print("ignore needs --comment (why this record may be dropped)", file=sys.stderr)
                return 2
            n = quarantine.ignore(conn, args.ids, args.comment, actor=_actor())
            print(f"{n} entr{'y' if n == 1 else 'ies'} ignored")
    return 0


def cmd_xref(args) -> int:
    """What the hub holds a key for, per entity and system: the hub's side of a target count."""
    x = model.xref.c
    with store.engine().begin() as conn:
        rows = conn.execute(select(x.entity, x.system, func.count(), func.count(func.distinct(x.hub_id)))
                            .group_by(x.entity, x.system).order_by(x.entity, x.system)).all()
    counts = [{"entity": e, "system": s, "keys": int(n), "hub_ids": int(h)} for e, s, n, h in rows]
    if args.json:
        print(json.dumps(counts, ensure_ascii=False))
    else:
        for c in counts:
            print(f"{c['entity']:<16} {c['system']:<10} {c['keys']:>8} keys for {c['hub_ids']:>8} hub records")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hub", description="Operate the integration hub.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report", help="last runs with their step counts and record outcomes")
    r.add_argument("--flow")
    r.add_argument("--run")
    r.add_argument("--last", type=int, default=1)
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=cmd_report)
    q = sub.add_parser("quarantine", help="list, show, replay or ignore quarantined records")
    q.add_argument("action", choices=["list", "show", "replay", "ignore"])
    q.add_argument("ids", nargs="*", type=entry_id)
    q.add_argument("--flow")
    q.add_argument("--status", default="open", help="open | replay_pending | replayed | resolved | ignored | all")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--comment")
    q.set_defaults(fn=cmd_quarantine)
    x = sub.add_parser("xref", help="keys the hub holds per entity and system (what it says the targets hold)")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_xref)
    args = p.parse_args(argv)
    return args.fn(args)
