"""The run report: what each step did and where every record read ended up.

Accounting is checked, not assumed: for every system, records read = written + skipped +
quarantined, where "written" covers every outcome that stored or sent the record.
"""
from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select

from hub import shop_audit, config, model, store

#: Which accounting bucket an outcome falls in (in = written + skipped + quarantined).
SKIPPED = ("skipped", "waiting")
QUARANTINED = ("quarantined", "held back")


def bucket(outcome: str) -> str:
    if outcome.startswith(QUARANTINED):
        return "quarantined"
    if outcome.startswith(SKIPPED):
        return "skipped"
    return "written"


def build(run_id: str, url: str | None = None) -> dict[str, Any]:
    eng = store.engine(url)
    with eng.begin() as conn:
        run = conn.execute(select(model.sync_run).where(model.sync_run.c.run_id == run_id)).first()
        steps = [dict(r._mapping) for r in conn.execute(select(model.sync_step).where(
            model.sync_step.c.run_id == run_id).order_by(model.sync_step.c.started_at))]
        outcomes = store.stage_read(conn, run_id, "outcome")
        census = store.stage_read(conn, run_id, "census")
        sources = store.stage_read(conn, run_id, "source")
        audited = shop_audit.of_run(conn, run_id)
    systems: dict[str, Any] = {}
    if not outcomes.empty:
        for system, part in outcomes.groupby("system"):
            tally = part["outcome"].value_counts().to_dict()
            buckets = part["outcome"].map(bucket).value_counts()
            skipped = int(buckets.get("skipped", 0))
            quarantined = int(buckets.get("quarantined", 0))
            written = int(buckets.get("written", 0))
            systems[str(system)] = {"in": len(part), "written": written, "skipped": skipped,
                                    "quarantined": quarantined, "outcomes": {k: int(v) for k, v in tally.items()},
                                    "adds_up": len(part) == written + skipped + quarantined}
    _add_sources(systems, sources)
    targets = _targets(census)
    for system, held in targets.items():
        if held["duplicates"] or held["missing"]:
            systems.setdefault(system, {"in": 0, "written": 0, "skipped": 0, "quarantined": 0, "outcomes": {}})
            systems[system]["adds_up"] = False
    return {
        "run_id": run_id,
        "flow": run.flow if run else None,
        "status": run.status if run else None,
        "started_at": str(run.started_at) if run else None,
        "finished_at": str(run.finished_at) if run and run.finished_at else None,
        "steps": [{k: (str(v) if k.endswith("_at") else v) for k, v in s.items() if k not in ("run_id", "flow")}
                  for s in steps],
        "systems": systems,
        "targets": targets,
        "shop_audit": shop_audit.summary(audited) if not audited.empty else {},
    }


def _add_sources(systems: dict[str, Any], sources) -> None:
    """Every system the run read from gets its line, also with 0 records read (an empty
    incremental read, or a source whose pages were all unreadable); records read that reached
    no outcome (the run stopped early) do not add up. ``broken_pages``: pages quarantined."""
    if sources.empty:
        return
    for system, part in sources.groupby("system"):
        read = int(part["read"].sum())
        line = systems.setdefault(str(system), {"in": read, "written": 0, "skipped": 0, "quarantined": 0,
                                                "outcomes": {}, "adds_up": read == 0})
        line["broken_pages"] = int(part["broken_pages"].sum())


def _targets(census) -> dict[str, Any]:
    """Per target system: keys the run wrote, records the target holds for them, the keys it
    holds more than once (``duplicates``, with up to ten examples per stream) and the keys it
    does not hold at all though the write was answered as done (``missing``)."""
    out: dict[str, Any] = {}
    if census.empty:
        return out
    census = census.drop_duplicates(["system", "stream", "key"], keep="last")
    for system, part in census.groupby("system"):
        extra, gone = part[part["held"] > 1], part[part["held"] == 0]
        out[str(system)] = {"keys": len(part), "held": int(part["held"].sum()), "duplicates": len(extra),
                            "examples": {str(st): g["key"].head(10).tolist() for st, g in extra.groupby("stream")},
                            "missing": len(gone),
                            "missing_examples": {str(st): g["key"].head(10).tolist() for st, g in gone.groupby("stream")}}
    return out


def save(run_id: str, url: str | None = None) -> dict[str, Any]:
    """Build the report and keep it under var/reports/ as JSON."""
    rep = build(run_id, url)
    folder = config.var_dir() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    (folder / f"{rep['flow']}__{safe}.json").write_text(json.dumps(rep, ensure_ascii=False, indent=2, default=str),
                                                         encoding="utf-8")
    return rep


def render(rep: dict[str, Any]) -> str:
    """Plain text for a terminal."""
    lines = [f"run {rep['run_id']}  flow {rep['flow']}  status {rep['status']}",
             f"  {'step':<11}{'status':<9}{'sec':>6}{'read':>8}{'mapped':>8}{'rejected':>9}{'merged':>8}"
             f"{'written':>9}{'skipped':>9}{'quarant.':>9}"]
    for s in rep["steps"]:
        lines.append(f"  {s['step']:<11}{s['status']:<9}{s['seconds'] or 0:>6.1f}{s['read']:>8}{s['mapped']:>8}"
                     f"{s['rejected']:>9}{s['merged']:>8}{s['written']:>9}{s['skipped']:>9}{s['quarantined']:>9}")
        if s.get("error_text"):
            lines.append(f"    {s['error_class']}: {s['error_text']}")
    for system, t in rep["systems"].items():
        ok = "adds up" if t["adds_up"] else "DOES NOT ADD UP"
        lines.append(f"  {system}: in {t['in']} = written {t['written']} + skipped {t['skipped']} + "
                     f"quarantined {t['quarantined']}  ({ok})")
        if t.get("broken_pages"):
            lines.append(f"      {t['broken_pages']:>7}  pages unreadable (quarantine, stage extract)")
        for outcome, n in sorted(t["outcomes"].items(), key=lambda kv: -kv[1]):
            lines.append(f"      {n:>7}  {outcome}")
    for system, held in rep.get("targets", {}).items():
        faults = [f"{held['duplicates']} HELD MORE THAN ONCE"] if held["duplicates"] else []
        faults += [f"{held['missing']} WRITTEN BUT NOT HELD"] if held.get("missing") else []
        verdict = "; ".join(faults) or "each once"
        lines.append(f"  {system} holds {held['held']} records for the {held['keys']} keys written ({verdict})")
        for stream, keys in held["examples"].items():
            lines.append(f"      {stream}: {', '.join(keys)}")
        for stream, keys in held.get("missing_examples", {}).items():
            lines.append(f"      not held, {stream}: {', '.join(keys)}")
    for seat, a in rep.get("shop_audit", {}).items():
        lines.append(f"  {seat} audit: {a['windows']} windows, {a['agree']} agree with the platform's count, "
                     f"{a['found_late']} orders found late, {len(a['missing'])} missing → {a['verdict'].upper()}")
        if a["missing"]:
            lines.append(f"      missing: {', '.join(a['missing'][:20])}")
    return "\n".join(lines)
