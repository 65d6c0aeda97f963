"""``make demo`` / ``make up`` (``python -m demo [--up]``): the whole hub on the embedded default profile.

Seeds the sandbox, starts it on loopback, exports the Airflow connections that reach it,
then either runs every flow (customer_master, product_master, shop_orders, sales_orders, approvals,
shipments, stock, receipts, credit) in that order, twice, through Airflow (``airflow dags test``) and prints
the reports, or (``--up``) starts ``airflow standalone`` to watch it in the UI. The deployment is the
default one with 泛微 e-cology in the ``oa`` seat (``deploy/bindings.oa.yaml``): special prices are
asked for in the first run, the OA's approvers work through 20 days before the second, and a last
sales_orders run sends the orders whose special price was approved. Before the first sales_orders
run two dealers' ordering systems send their orders to the hub's dealer API (demo/dealers.py).

The demo drives the sandbox's worlds, so unlike the flows it names the systems it seeds.
``make demo ERP=sap`` (``HUB_BINDINGS=sap``) runs the same flows against the SAP S/4HANA stand-in,
``ERP=sap-ecc`` against SAP ECC: only the flows the bound seats take part in (as the DAG files
decide), the warehouse of the bound ERP shipping before each shipments run (demo/worlds.py).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from hub import bindings, config, report, store
from demo.worlds import WORLDS
from sandbox.harness import Sandbox

FLOWS = ["customer_master", "product_master", "shop_orders", "sales_orders", "approvals", "shipments", "stock",
         "receipts", "credit"]
#: The approvers' working days between two demo runs (the OA stand-in's clock)
OA_DAYS_BETWEEN_RUNS = 20


def offered() -> list[str]:
    """The demo's flows that the bound seats take part in (the DAG files decide the same way)."""
    from flows import roles, spec

    return [f for f in FLOWS if all(roles.offers(r, c) for r, c in spec.load(f).needs.items())]


def _airflow(*args: str, log: Path) -> int:
    with open(log, "w", encoding="utf-8") as out:
        return subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], stdout=out,
                              stderr=subprocess.STDOUT, env=os.environ.copy()).returncode


def _last_run(flow: str) -> str | None:
    from sqlalchemy import select

    from hub import model

    with store.engine().begin() as conn:
        return conn.execute(select(model.sync_run.c.run_id).where(model.sync_run.c.flow == flow)
                            .order_by(model.sync_run.c.started_at.desc()).limit(1)).scalar()


def _dedup_quality(truth_file: Path, erp: str) -> str:
    """Precision and recall of the hub's customer clusters against the seed's ground truth."""
    import pandas as pd
    from sqlalchemy import select

    from hub import model
    from quality import review
    from quality.evaluate import pairwise

    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    company = {f"crm:{r['crm_id']}": r["company_id"] for r in truth["crm"]}
    if erp == "u8":  # the seed's truth names U8's customer codes; other worlds are judged on the CRM's
        company |= {f"u8:{r['u8_code']}": r["company_id"] for r in truth["u8"]}
    with store.engine().begin() as conn:
        x = pd.DataFrame(conn.execute(select(model.xref.c.system, model.xref.c.native_key, model.xref.c.hub_id)
                                      .where(model.xref.c.entity == "customer")).all(), columns=["system", "key", "hub"])
        waiting = len(review.queue(conn, 10_000))
    nodes = x["system"] + ":" + x["key"]
    seeded = nodes.isin(company)
    s = pairwise(nodes[seeded].map(company).set_axis(nodes[seeded]), x["hub"][seeded].set_axis(nodes[seeded]))
    return (f"dedup against the seeded truth ({s['records']} records the hub holds): precision {s['precision']:.4f}, "
            f"recall {s['recall']:.4f}, F1 {s['f1']:.4f}; {s['true_positives']} of {s['true_pairs']} duplicate pairs "
            f"found, {s['false_merges']} false merges; {waiting} pairs wait for review (python -m quality review list)")


def demo(accounts: int, runs: int) -> int:
    var = config.var_dir()
    for stale in ("hub.db", "hub.db-wal", "hub.db-shm"):
        (var / stale).unlink(missing_ok=True)
    folder = var / "sandbox"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    logs = var / "logs"
    logs.mkdir(exist_ok=True)
    from flows import roles

    erp = roles.seat("erp")
    world = WORLDS[erp.system]
    flows = offered()
    sb = Sandbox(folder, accounts=accounts).seed()
    from demo import dealers

    dealing = bool(roles.seats("dealer")) and "sales_orders" in flows
    with sb, (dealers.channel() if dealing else contextlib.nullcontext()) as dealer_api:
        sb.export()
        os.environ.setdefault("HUB_RECEIPTS_AS_OF", "2025-06-30")  # the seeded world's today (overdue plans)
        print(f"sandbox up: 销售易 {sb.crm_url}, U8 OpenAPI {sb.u8_url}, SAP S/4HANA {sb.sap_url}, SAP ECC {sb.ecc_url}, "
              f"shops (淘宝/天猫, 京东, 有赞, 抖店, 拼多多) {sb.shops_url}")
        print(f"bindings {bindings.path()}: erp = {erp.label} ({erp.system}); flows: {', '.join(flows)}")
        print(world.facts(sb))
        for n in range(1, runs + 1):
            for flow in flows:
                if flow == "shipments" and world.ship:
                    print(f"\n{world.ship(sb)}")
                if flow == "sales_orders" and n == 1 and dealer_api:
                    print(f"\nthe dealers' ordering systems send their orders to {dealer_api}: "
                          f"{dealers.send(sb, dealer_api)}")
                if flow == "approvals" and n > 1:
                    print(f"\nthe OA approvers work through {OA_DAYS_BETWEEN_RUNS} days: "
                          f"{sb.oa('advance', days=OA_DAYS_BETWEEN_RUNS)['decided']}")
                log = logs / f"{flow}-run{n}.log"
                print(f"\n=== {flow}, run {n} (airflow dags test; log {_shown(log)})")
                rc = _airflow("dags", "test", flow, log=log)
                run_id = _last_run(flow)
                if run_id:
                    print(report.render(report.build(run_id)))
                if rc != 0:
                    print(f"{flow} run {n} failed (exit {rc}); see {log}", file=sys.stderr)
                    return rc
        if "approvals" in flows:  # the orders whose special price was approved go now
            log = logs / f"sales_orders-run{runs + 1}.log"
            print(f"\n=== sales_orders, run {runs + 1}: the approved special prices (log {_shown(log)})")
            rc = _airflow("dags", "test", "sales_orders", log=log)
            if (run_id := _last_run("sales_orders")):
                print(report.render(report.build(run_id)))
            if rc != 0:
                return rc
        print("\n" + world.facts(sb))
        print(_dedup_quality(folder / "truth.json", erp.system))
        print(world.orders(sb, erp.name))
        if "shop_orders" in flows:
            from demo import shops

            print(shops.summary(sb, roles.seats("shop"), erp.name, erp.label))
        from demo import orders, receipts

        if erp.system == "u8":  # the U8 world's own closing lines (seeded orders, receipts)
            print(orders.summary(folder))
        if "receipts" in flows:
            print(receipts.summary(folder))
        if "approvals" in flows:
            from demo import approvals

            print(approvals.summary(folder))
        if dealer_api:
            print(dealers.summary(sb, dealer_api, os.environ.get("HUB_RECEIPTS_AS_OF")))
    return 0


def _jwt_secret() -> str:
    """One signing key for every standalone component (else each makes its own and the API
    server refuses the scheduler's task tokens): ``AIRFLOW__API_AUTH__JWT_SECRET`` if set, else
    a random one made once and kept beside the metadata DB (mode 600), never in the repo."""
    if os.environ.get("AIRFLOW__API_AUTH__JWT_SECRET"):
        return os.environ["AIRFLOW__API_AUTH__JWT_SECRET"]
    path = Path(os.environ.get("AIRFLOW_HOME", config.var_dir() / "airflow")) / "jwt_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def _fernet_key() -> str:
    """The key the hub's vault seals with (Airflow's own, which encrypts connections too):
    ``AIRFLOW__CORE__FERNET_KEY`` if set, else one made once and kept beside the metadata DB (mode 600)."""
    if os.environ.get("AIRFLOW__CORE__FERNET_KEY"):
        return os.environ["AIRFLOW__CORE__FERNET_KEY"]
    from cryptography.fernet import Fernet

    path = Path(os.environ.get("AIRFLOW_HOME", config.var_dir() / "airflow")) / "fernet_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode(), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def up() -> int:
    folder = config.var_dir() / "sandbox"
    # fixed ports by default, so connections a user typed into the UI keep working across restarts
    sb = Sandbox(folder, crm_port=int(os.environ.get("HUB_UP_CRM_PORT", 18701)),
                 u8_port=int(os.environ.get("HUB_UP_U8_PORT", 18702)))
    if not (folder / "credentials.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        sb.seed()
    with sb:
        sb.export()
        print(f"sandbox up: 销售易 {sb.crm_url}, U8 OpenAPI {sb.u8_url}; starting airflow standalone on "
              f":{os.environ.get('AIRFLOW__API__PORT', '8080')}")
        # standalone starts its components as `airflow ...` from PATH: the virtualenv's first
        venv_bin = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
               "AIRFLOW__API_AUTH__JWT_SECRET": _jwt_secret()}
        try:
            return subprocess.call([str(Path(venv_bin) / "airflow"), "standalone"], env=env)
        except KeyboardInterrupt:
            return 0


def _shown(path: Path) -> str:
    """A path relative to the project where it lies inside it (shorter to read), else absolute."""
    try:
        return str(path.relative_to(config.PROJECT_ROOT))
    except ValueError:
        return str(path)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m demo")
    p.add_argument("--up", action="store_true", help="run Airflow standalone with the sandbox instead")
    p.add_argument("--accounts", type=int, default=300)
    p.add_argument("--runs", type=int, default=2)
    args = p.parse_args()
    # the demo's deployment: the default one with 泛微 e-cology in the oa seat (special prices are
    # approved there); ERP=sap / ERP=sap-ecc choose those files instead
    os.environ.setdefault(bindings.ENV, "oa")
    os.environ["AIRFLOW__CORE__FERNET_KEY"] = _fernet_key()
    return up() if args.up else demo(args.accounts, args.runs)


if __name__ == "__main__":
    sys.exit(main())
