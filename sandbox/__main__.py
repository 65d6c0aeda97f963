"""Command line: ``python -m sandbox {seed,serve,up,odbc-ini,chaos}``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .faults import KINDS


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown fault kind(s) {bad}; choose from {','.join(KINDS)}")
    return kinds


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox",
                                description="Local stand-ins of 销售易 CRM, 用友 U8, SAP S/4HANA and the 天眼查 / 企查查 registries.")
    sub = p.add_subparsers(dest="command", required=True)

    def dir_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--dir", type=Path, default=Path("var/sandbox"), help="data directory (default var/sandbox)")

    def seed_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--accounts", type=int, default=300, help="CRM accounts to generate (default 300)")
        sp.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        sp.add_argument("--orders", type=int, default=None, help="CRM sales orders to generate (default accounts / 2)")
        sp.add_argument("--shop-orders", type=int, default=None,
                        help="orders per shop platform (5 platforms; default one per account)")

    def serve_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--host", default="127.0.0.1")
        sp.add_argument("--crm-port", type=int, default=18701)
        sp.add_argument("--u8-port", type=int, default=18702)
        sp.add_argument("--registry-port", type=int, default=None,
                        help="serve the 天眼查 / 企查查 stand-in on this port (default: not served)")
        sp.add_argument("--sap-port", type=int, default=None,
                        help="serve the SAP S/4HANA OData stand-in on this port (default: not served)")
        sp.add_argument("--ecc-port", type=int, default=None,
                        help="serve the SAP ECC SOAP (BAPI) stand-in on this port (default: not served)")
        sp.add_argument("--shops-port", type=int, default=None,
                        help="serve the shop platforms' stand-in (TOP, JOS, PDD, 抖店, 有赞) on this port (default: not served)")
        sp.add_argument("--dingtalk-port", type=int, default=None,
                        help="serve the 钉钉 approvals stand-in on this port (default: not served)")
        sp.add_argument("--oa-port", type=int, default=None,
                        help="serve the 泛微 e-cology 9 stand-in on this port (default: not served)")
        sp.add_argument("--fault-rate", type=float, default=0.0, help="share of requests that get a fault")
        sp.add_argument("--fault-kinds", type=_kinds, default=KINDS, help=f"comma list of {','.join(KINDS)}")
        sp.add_argument("--fault-seed", type=int, default=1)
        sp.add_argument("--fault-slow-seconds", type=float, default=2.0, help="delay of the 'slow' fault")
        sp.add_argument("--crm-token-ttl", type=float, default=7199, help="CRM access token lifetime, seconds")
        sp.add_argument("--u8-token-ttl", type=float, default=7200, help="U8 token lifetime, seconds")

    sp = sub.add_parser("seed", help="(re)create crm.db, u8.db, sap_s4.db, registry.jsonl, truth files and credentials.json")
    dir_arg(sp)
    seed_args(sp)
    sp = sub.add_parser("serve", help="serve the stand-ins over the data directory")
    dir_arg(sp)
    serve_args(sp)
    sp = sub.add_parser("up", help="seed if the directory has no data yet, then serve")
    dir_arg(sp)
    seed_args(sp)
    serve_args(sp)
    sp = sub.add_parser("odbc-ini", help="print the ODBC connection string of u8.db")
    dir_arg(sp)
    sp = sub.add_parser("chaos", help="run every flow under faults of every kind and kills; compare with a clean run")
    sp.add_argument("--dir", type=Path, required=True, help="folder for the clean and chaos worlds (kept for inspection)")
    sp.add_argument("--rate", type=float, default=0.3, help="share of requests that get a fault (default 0.3)")
    sp.add_argument("--seed", type=int, default=7, help="fault seed (default 7)")
    sp.add_argument("--accounts", type=int, default=300, help="CRM accounts to seed (default 300, the demo's)")
    return p


def _seed(args: argparse.Namespace) -> None:
    from .seed import seed

    started = time.monotonic()
    ds = seed(args.dir, args.seed, args.accounts, args.orders, args.shop_orders)
    print(f"seeded {args.dir}: {len(ds.accounts)} accounts, {len(ds.contacts)} contacts, "
          f"{len(ds.u8_rows)} U8 customers in {time.monotonic() - started:.1f}s", file=sys.stderr)


def _serve(args: argparse.Namespace) -> int:
    from .server import ServeOptions, run

    return run(ServeOptions(
        directory=args.dir, host=args.host, crm_port=args.crm_port, u8_port=args.u8_port,
        registry_port=args.registry_port, sap_port=args.sap_port, ecc_port=args.ecc_port,
        shops_port=args.shops_port, oa_port=args.oa_port, dingtalk_port=args.dingtalk_port,
        fault_rate=args.fault_rate, fault_kinds=args.fault_kinds, fault_seed=args.fault_seed,
        slow_seconds=args.fault_slow_seconds, crm_token_ttl=args.crm_token_ttl, u8_token_ttl=args.u8_token_ttl,
    ))


def odbc_connection_string(directory: Path) -> str:
    """Connection string for u8.db through the SQLite3 ODBC driver (libsqliteodbc)."""
    return f"DRIVER={{SQLite3}};Database={(directory / 'u8.db').resolve()};"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "seed":
        _seed(args)
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "chaos":
        from .chaos import chaos

        if not 0.0 <= args.rate <= 1.0 or args.accounts < 1:
            print("sandbox chaos: --rate must be between 0 and 1 and --accounts at least 1", file=sys.stderr)
            return 2
        return chaos(args.dir, args.rate, args.seed, args.accounts)
    if args.command == "up":
        from .server import SEEDED_FILES

        if not all((args.dir / n).exists() for n in SEEDED_FILES):
            _seed(args)
        return _serve(args)
    print(odbc_connection_string(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
