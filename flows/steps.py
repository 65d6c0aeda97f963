"""Building blocks the flows share: read a stream into staging, quarantine mapping errors,
write to a target in chunks whose outcomes are committed as they land."""
from __future__ import annotations

import json
import logging
from typing import Any, Callable, Sequence

import pandas as pd

from sqlalchemy import select

from flows import settings
from hub import model, money, outbox, quarantine, watermarks, xref
from hub.errors import DataError, TransientError
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import frame_records, select_in, stage_append, stage_read, stage_write, upsert, utcnow
from hub.types import Census, Connector, WriteResult
from mappings import engine
from quality import gate

log = logging.getLogger("flows.steps")

REFETCH_STAGES = ("map", "validate")


def _json_safe(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(record, ensure_ascii=False, default=str))


#: A record as staging stores it (Decimals, datetimes as text); for records a flow reads itself.
json_safe = _json_safe


def read_stream(ctx: StepContext, connector: Connector, system: str, stream: str, entity: str,
                stage_as: str | None = None, accounted_as: str | None = None) -> StepCounts:
    """Read ``stream`` since its watermark into this run's extract stage (under ``stage_as``,
    default the system name, when one system gives a flow several streams).

    Records an operator asked to replay are fetched again by key (the source may have
    been fixed since). A page the source sent broken is quarantined whole and the read
    stops there; the pending watermark stays at the last good page, so the next run reads
    from there again. A read that got only broken pages fails the step (TransientError:
    Airflow retries, and the run ends failed if it persists) instead of a green run that
    read nothing; a read that reaches the end closes the stream's earlier broken-page entries
    as resolved, since their records have now arrived.

    The report accounts the stream under ``accounted_as``: by default ``stage_as`` when it is
    a system name of its own (``u8_invoice``), else ``system`` (stage ``source``).
    """
    wm_name = f"{system}.{stream}"
    with ctx.engine.begin() as conn:
        cursor = watermarks.get(conn, ctx.flow, wm_name)
    records: list[dict[str, Any]] = []
    bad: list[tuple[str, str]] = []
    last = None
    for page in connector.read(stream, cursor):
        records.extend(page.records)
        if page.bad:
            bad.extend(page.bad)
            break
        if page.cursor is not None:
            last = page.cursor
    read = len(records)
    label = accounted_as or (stage_as if stage_as and "." not in stage_as else system)
    with ctx.engine.begin() as conn:
        replays = quarantine.take_replays(conn, ctx.flow, system, REFETCH_STAGES, entity)
        keys = sorted({r["record_key"] for r in replays})
        if keys:
            for page in connector.read(stream, {"keys": keys}):
                records.extend(page.records)
        stage_write(conn, ctx.run_id, "extract", pd.DataFrame.from_records([_json_safe(r) for r in records]),
                    stage_as or system)
        if bad:
            quarantine.add(conn, run_id=ctx.run_id, flow=ctx.flow, entity=entity, system=system, stage="extract",
                           items=[(quarantine.page_key(stream, where), {"body": body},
                                   ["the source sent a page that is not valid JSON"]) for where, body in bad])
        else:
            quarantine.resolve_pages(conn, run_id=ctx.run_id, flow=ctx.flow, system=system, entity=entity,
                                     stream=stream)
        if last is not None:
            watermarks.set_pending(conn, ctx.run_id, ctx.flow, wm_name, last)
        stage_write(conn, ctx.run_id, "source", pd.DataFrame([{"system": label, "stream": stream, "read": len(records),
                                                               "broken_pages": len(bad)}]), wm_name)
    log.info("%s %s: read %d records (%d replays), %d broken pages", system, stream, len(records), len(keys), len(bad))
    if bad and not read:
        raise TransientError(f"{system} {stream}: every page the source sent was unreadable ({len(bad)} quarantined, "
                             f"stage extract) and no record was read; the read is retried")
    return StepCounts(read=len(records), quarantined=len(bad))


def quarantine_errors(conn, ctx: StepContext, flow: str, entity: str, system: str, stage: str,
                      raw: pd.DataFrame, errors: pd.DataFrame, key_col: str) -> int:
    """Quarantine the rows of ``raw`` named in ``errors`` (_row, field, reason), one entry
    per record with all its reasons."""
    if errors.empty:
        return 0
    reasons = errors.groupby("_row")["reason"].agg(list)
    items = []
    for row, why in reasons.items():
        record = _json_safe({k: v for k, v in raw.loc[row].to_dict().items()
                             if v is not None and not (isinstance(v, float) and v != v)})
        items.append((str(record.get(key_col, row)), record, why))
    return quarantine.add(conn, run_id=ctx.run_id, flow=flow, entity=entity, system=system, stage=stage, items=items)


def crm_records(mapped, todo: pd.DataFrame) -> list[dict[str, Any]]:
    """The CRM write records of a mapped frame: nulls left out (a patch never blanks a field),
    ``_key`` the hub id, ``id`` the CRM's where known, else ``_linked`` (the connector looks the
    record up by its natural key before a create)."""
    records = []
    for payload, (hub_id, crm_id) in zip(frame_records(mapped.frame.drop(columns=["_row"])),
                                         todo.loc[mapped.frame["_row"], ["hub_id", "crm_id"]].itertuples(index=False)):
        rec = money.json_numbers({k: v for k, v in payload.items() if v is not None})   # Decimal → exact JSON number
        rec |= {"_key": hub_id, "_linked": not isinstance(crm_id, str)}
        if isinstance(crm_id, str):
            rec["id"] = crm_id
        records.append(rec)
    return records


def write_to_crm(ctx: StepContext, entity: str, spec, todo: pd.DataFrame, connector: Connector,
                 results: str) -> StepCounts:
    """Map ``todo`` (canonical rows with ``hub_id``, ``crm_id`` where known and ``content_hash``) by
    ``spec`` and create or patch them in the CRM, chunk by chunk through the write ledger: a row
    that does not map is quarantined, a written one's xref keeps the CRM id and the hash (so the
    next run sends it only when it changes), and every result is staged in ``results``."""
    from flows.ledger import Ledger

    counts = StepCounts()
    mapped = engine.apply(spec, todo)
    if len(mapped.errors):
        with ctx.engine.begin() as conn:
            counts.quarantined += quarantine_errors(conn, ctx, ctx.flow, entity, "crm", "write", todo, mapped.errors, "hub_id")
            outbox.mark(conn, entity, "crm", todo.loc[mapped.errors["_row"].unique(), "hub_id"].tolist(), outbox.FAILED,
                        "mapping to the CRM failed")
    records = crm_records(mapped, todo)
    hashes = todo.set_index("hub_id")["content_hash"]

    def holds(conn, ok) -> None:
        xref.save(conn, entity, "crm", pd.DataFrame([{"hub_id": rec["_key"], "native_key": res.native_key,
                                                      "native_version": None, "content_hash": hashes[rec["_key"]]}
                                                     for rec, res in ok]))

    ledger = Ledger(ctx, entity, "crm", on_ok=holds, results=results, row=lambda rec, res: {
        "hub_id": rec["_key"], "result": "linked" if res.status == "updated" and rec["_linked"] else res.status})
    return counts + write_in_chunks(ctx, connector, spec.stream, records, ledger.persist)


Persist = Callable[[Any, list[dict[str, Any]], list[WriteResult]], StepCounts]


def write_in_chunks(ctx: StepContext, connector: Connector, stream: str, records: Sequence[dict[str, Any]],
                    persist: Persist) -> StepCounts:
    """Write and commit each chunk's outcome before the next: a kill loses at most one
    chunk's bookkeeping, which the target's idempotency key makes harmless to redo.

    Then count what the target holds for the records written (:func:`take_census`), so the
    report cannot say "adds up" while the target holds a record twice."""
    counts = StepCounts()
    size = settings.write_chunk()
    written: list[dict[str, Any]] = []
    deferred: list[WriteResult] = []
    for start in range(0, len(records), size):
        sent = list(records[start:start + size])
        chunk, results = [], []
        for rec, res in zip(sent, connector.write(stream, sent)):
            if res.status == "deferred":
                deferred.append(res)
            else:
                chunk.append(rec)
                results.append(res)
        if chunk:
            with ctx.engine.begin() as conn:
                counts += persist(conn, chunk, results)
        written.extend(rec for rec, res in zip(chunk, results) if res.status != "failed")
    take_census(ctx, connector, stream, written)
    if deferred:
        raise TransientError(f"{connector.system} {stream}: {len(deferred)} of {len(records)} records could not be "
                             f"written for now (e.g. {deferred[0].key}: {deferred[0].error}); the others are booked "
                             f"and the step's retry sends only these")
    return counts


def take_census(ctx: StepContext, connector: Connector, stream: str, written: Sequence[dict[str, Any]]) -> None:
    """Stage, per natural key the run wrote, how many records the target holds (stage
    ``census``): more than one is a duplicate the report shows. Targets whose own idempotency
    key makes a second record impossible (U8's ``biz_id``) have no census."""
    if not written or not isinstance(connector, Census):
        return
    held = connector.census(stream, written)
    if not held:
        return
    frame = pd.DataFrame({"system": connector.system, "stream": stream, "key": list(held), "held": list(held.values())})
    with ctx.engine.begin() as conn:
        stage_append(conn, ctx.run_id, "census", frame)
    extra = frame[frame["held"] > 1]
    if len(extra):
        log.error("%s %s: the target holds %d records for %d keys written once (e.g. %s)", connector.system, stream,
                  int(extra["held"].sum()), len(extra), ", ".join(extra["key"].head(5)))


# --- shared by the flows that map, gate and diff one entity per system -------------------------------

def newest_per_key(raw: pd.DataFrame, key: str, version: str | None) -> tuple[pd.DataFrame, int]:
    """The newest version of each record (an overlap window or a replay may bring one twice)."""
    raw = raw.reset_index(drop=True)
    if version and version in raw.columns:
        order = pd.to_numeric(raw[version], errors="coerce")
        raw = raw.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order")
    keys = raw[key].astype(str) if key in raw.columns else pd.Series(raw.index.astype(str), index=raw.index)
    dup = keys.duplicated(keep="last")
    return raw[~dup], int(dup.sum())


def decimals_as_text(frame: pd.DataFrame, spec) -> pd.DataFrame:
    """Decimal columns of a spec in their canonical text (``13.0`` and ``13`` hash alike)."""
    for rule in spec.fields:
        if rule.type == "decimal" and rule.target in frame.columns:
            frame[rule.target] = frame[rule.target].map(lambda v: money.text(v) if v is not None and v == v else None)
    return frame


def map_records(conn, ctx: StepContext, entity: str, system: str, spec, raw: pd.DataFrame,
                stage_as: str | None = None) -> tuple[pd.DataFrame, StepCounts]:
    """Map a stream's raw records by ``spec``: newest version per key, mapping errors to
    quarantine (stage map), decimals as canonical text; the good rows are staged and returned."""
    counts = StepCounts(read=len(raw))
    if raw.empty:
        stage_write(conn, ctx.run_id, "map", pd.DataFrame(), stage_as or system)
        return pd.DataFrame(), counts
    raw, dups = newest_per_key(raw, spec.key, spec.version)
    counts.skipped = dups
    result = engine.apply(spec, raw)
    counts.quarantined = quarantine_errors(conn, ctx, ctx.flow, entity, system, "map", raw, result.errors, spec.key)
    good = decimals_as_text(result.frame.drop(columns=["_row"]), spec)
    good.insert(0, "system", system)
    good["_key"] = good["_key"].astype(str)
    good["_row"] = f"{stage_as or system}:" + good["_key"]
    counts.mapped, counts.rejected = len(good), counts.quarantined
    stage_write(conn, ctx.run_id, "map", good, stage_as or system)
    return good, counts


def gate_records(conn, ctx: StepContext, entity: str, batch: pd.DataFrame, *, system_column: str = "system",
                 key_column: str = "_key") -> tuple[pd.DataFrame, StepCounts]:
    """Run ``entity``'s GX suite on ``batch``; failing rows go to quarantine (stage validate)
    with every failed expectation's reason. A reject rate over the flow's threshold stops the
    run (the source itself looks broken).

    The DataError rolls the caller's transaction back, so a batch over the threshold has its
    entries committed in a transaction of their own first: the records that stopped the run are
    in quarantine, where operators look. A retry adds none twice (quarantine.add updates the
    entry of the same record and payload). Call it before writing in ``conn``: on SQLite that
    own transaction would wait for the caller's (one writer), so a caller that wrote is refused."""
    counts = StepCounts(read=len(batch))
    if batch.empty:
        return batch, counts
    _refuse_written(conn)
    result = gate.validate(entity, batch, system_column)
    bad = _rejected_items(batch, result.failures, system_column, key_column)
    threshold = settings.reject_threshold(ctx.flow)
    rate = sum(len(items) for items in bad.values()) / max(1, counts.read)
    if counts.read >= settings.MIN_ROWS_FOR_THRESHOLD and rate > threshold:
        with ctx.engine.begin() as own:
            n = _quarantine_rejected(own, ctx, entity, bad)
        log.error("%s: %d of %d %s records quarantined (stage validate) before the run stops", ctx.flow, n,
                  counts.read, entity)
        raise DataError(f"{ctx.flow}: {rate:.0%} of {counts.read} {entity} records failed validation "
                        f"(threshold {threshold:.0%}); the source itself looks broken")
    counts.quarantined = _quarantine_rejected(conn, ctx, entity, bad)
    counts.rejected = counts.quarantined
    counts.mapped = len(result.good)
    return result.good, counts


def _rejected_items(batch: pd.DataFrame, failures: pd.DataFrame, system_column: str,
                    key_column: str) -> dict[str, list[tuple[str, dict[str, Any], list[str]]]]:
    """The gate's failing rows as quarantine items per system, each with every failed expectation."""
    if not len(failures):
        return {}
    reasons = failures.groupby("_row").apply(
        lambda g: [f"{e}: {r}" for e, r in zip(g["expectation"], g["reason"])], include_groups=False)
    bad = batch[batch["_row"].isin(reasons.index)]
    return {str(system): [(k, rec, reasons[row]) for k, row, rec in zip(part[key_column], part["_row"],
                                                                       frame_records(part))]
            for system, part in bad.groupby(system_column)}


def _quarantine_rejected(conn, ctx: StepContext, entity: str,
                         bad: dict[str, list[tuple[str, dict[str, Any], list[str]]]]) -> int:
    return sum(quarantine.add(conn, run_id=ctx.run_id, flow=ctx.flow, entity=entity, system=system,
                              stage="validate", items=items) for system, items in bad.items())


def _refuse_written(conn) -> None:
    """SQLite has one writer: a caller's transaction that wrote already would block the own
    transaction :func:`gate_records` commits a rejected batch in (30 s, then "database is locked")."""
    if conn.dialect.name == "sqlite" and getattr(conn.connection.dbapi_connection, "in_transaction", False):
        raise RuntimeError("gate_records was called in a transaction that has written already: on SQLite the "
                           "quarantine of a batch over the reject threshold could not be committed on its own; "
                           "call it before the caller's writes")


def with_known_hashes(conn, entity: str, system: str, batch: pd.DataFrame, hashes: pd.Series) -> pd.DataFrame:
    """``batch`` plus its ``content_hash``, the hub id xref holds for its ``_key`` and the hash
    xref last recorded (``known_hash``): equal hashes mean nothing changed since."""
    known = xref.lookup(conn, entity, system, batch["_key"].astype(str).tolist())
    out = batch.assign(_key=batch["_key"].astype(str), content_hash=hashes.to_numpy())
    out = out.drop(columns=[c for c in ("hub_id",) if c in out.columns])
    return out.merge(known[["native_key", "hub_id", "content_hash"]].rename(
        columns={"native_key": "_key", "content_hash": "known_hash"}), on="_key", how="left")


def save_outcomes(ctx: StepContext, frame: pd.DataFrame) -> None:
    """This run's outcome per record read, for the report (system, key, outcome, detail, hub_id)."""
    with ctx.engine.begin() as conn:
        stage_write(conn, ctx.run_id, "outcome", frame)


def quarantined_keys(conn, run_id: str, entity: str, stages: Sequence[str]) -> pd.DataFrame:
    """Records of ``entity`` this run quarantined at ``stages``: system, key, reasons (joined)."""
    q = model.quarantine.c
    rows = conn.execute(select(q.system, q.record_key, q.reasons).where(
        q.last_run_id == run_id, q.entity == entity, q.stage.in_(list(stages)))).all()
    return pd.DataFrame([(s, k, "; ".join(r)) for s, k, r in rows], columns=["system", "key", "detail"])


def save_source_records(conn, table, batch: pd.DataFrame, columns: Sequence[str], run_id: str) -> pd.DataFrame:
    """Upsert a resolved batch as source records (one per system and native key), the
    columns a system did not send as NULL; returns the frame, keyed by ``native_key``."""
    src = batch.rename(columns={"_key": "native_key"})
    for col in columns:
        if col not in src.columns:
            src[col] = None
    src["source_updated_at"] = pd.to_datetime(src["source_updated_at"], utc=True, errors="coerce")
    src["run_id"] = run_id
    upsert(conn, table, frame_records(src[["system", "native_key", "hub_id", *columns, "source_updated_at",
                                           "content_hash", "run_id"]]), keys=["system", "native_key"])
    return src


def upsert_canonical(conn, table, frame: pd.DataFrame, fields: Sequence[str], run_id: str) -> int:
    """Insert or update canonical records (hub_id, ``fields``, content_hash): ``created_at`` is
    set once, ``updated_at`` and ``run_id`` on every change. Set-based, one statement per chunk."""
    if frame.empty:
        return 0
    known = set(select_in(conn, table, "hub_id", frame["hub_id"].tolist(), columns=["hub_id"])["hub_id"])
    now = utcnow()
    rows = frame[["hub_id", *fields, "content_hash"]].copy()
    rows["created_at"] = [None if h in known else now for h in rows["hub_id"]]
    rows["updated_at"], rows["run_id"] = now, run_id
    records = frame_records(rows)
    fresh = [r for r in records if r["created_at"] is not None]
    old = [{k: v for k, v in r.items() if k != "created_at"} for r in records if r["created_at"] is None]
    upsert(conn, table, fresh, keys=["hub_id"])
    upsert(conn, table, old, keys=["hub_id"])
    return len(records)


def map_lines(conn, ctx: StepContext, entity: str, system: str, spec, raw_lines: pd.DataFrame, heads: pd.DataFrame,
              parent_raw: str, parent_field: str) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Map the lines of mapped headers (an order's lines, a dispatch list's rows). A line that
    does not map holds its whole header back: the header is quarantined (stage map) with the
    line's reason, because a document goes to its target whole or not at all.
    Returns (lines, the headers still good, how many headers were quarantined)."""
    if raw_lines.empty:
        return pd.DataFrame(columns=["_key", parent_field]), heads, 0
    raw_lines, _ = newest_per_key(raw_lines, spec.key, spec.version)
    result = engine.apply(spec, raw_lines)
    lines = decimals_as_text(result.frame.drop(columns=["_row"]), spec)
    lines["_key"], lines[parent_field] = lines["_key"].astype(str), lines[parent_field].astype(str)
    if not len(result.errors):
        return lines, heads, 0
    rows = result.errors["_row"]
    bad = result.errors.assign(parent=raw_lines.loc[rows, parent_raw].astype(str).to_numpy(),
                               line=raw_lines.loc[rows, spec.key].astype(str).to_numpy())
    held = bad.groupby("parent").apply(lambda g: [f"line {ln}: {r}" for ln, r in zip(g["line"], g["reason"])],
                                       include_groups=False)
    n = 0
    if not heads.empty:
        hit = heads[heads["_key"].isin(held.index)]
        n = quarantine.add(conn, run_id=ctx.run_id, flow=ctx.flow, entity=entity, system=system, stage="map",
                           items=[(k, rec, held[k]) for k, rec in zip(hit["_key"], frame_records(hit))])
        heads = heads[~heads["_key"].isin(held.index)]
    return lines[~lines[parent_field].isin(held.index)], heads, n


def read_outcomes(conn, run_id: str, entity: str, system: str, keys: pd.Series, hub_id_of: Callable[[str], str],
                  skipped: pd.DataFrame, exempt: set[str] | None = None) -> pd.DataFrame:
    """Outcome rows (system, key, hub_id, outcome, detail) for the records a run read: those
    quarantined at extract / map / validate with their reasons, those read twice, and those the
    resolve step skipped (``skipped``: _key and an optional reason, "unchanged since last run"
    by default) unless their hub id is in ``exempt`` (e.g. sent this run after all). The rest are
    left open (outcome None) for the flow to fill from its writes."""
    out = pd.DataFrame({"system": system, "key": keys.map(lambda k: None if k is None or k != k else str(k))})
    out["hub_id"] = out["key"].map(lambda k: hub_id_of(k) if k else None)
    out["outcome"], out["detail"] = None, None
    bad = quarantined_keys(conn, run_id, entity, ["extract", "map", "validate"])
    bad = bad[bad["system"] == system].drop_duplicates("key").set_index("key")["detail"]
    hit = out["key"].isin(bad.index) | out["key"].isna()
    out.loc[hit, "outcome"] = "quarantined"
    out.loc[hit, "detail"] = out.loc[hit, "key"].map(bad).fillna("record has no key")
    dup = out["outcome"].isna() & out["key"].duplicated(keep="last")
    out.loc[dup, ["outcome", "detail"]] = ["skipped", "read twice (overlap window)"]
    if not skipped.empty:
        why = skipped.assign(_key=skipped["_key"].astype(str)).drop_duplicates("_key").set_index("_key")
        why = why["reason"] if "reason" in why else pd.Series("unchanged since last run", index=why.index)
        hit = out["outcome"].isna() & out["key"].isin(why.index) & ~out["hub_id"].isin(exempt or set())
        out.loc[hit, "outcome"] = "skipped"
        out.loc[hit, "detail"] = out.loc[hit, "key"].map(why)
    return out


def crm_write_outcomes(conn, run_id: str, entity: str, out: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """Fill the open outcome rows from this run's CRM writes (``crm_results``: hub_id, result
    labelled by ``labels``) and from earlier failed writes still in the outbox."""
    results = stage_read(conn, run_id, "crm_results")
    if not results.empty:
        res = results.drop_duplicates("hub_id", keep="last").set_index("hub_id")["result"].map(labels)
        open_rows = out["outcome"].isna()
        out.loc[open_rows, "outcome"] = out.loc[open_rows, "hub_id"].map(res)
        failed = (out["outcome"] == "quarantined") & out["detail"].isna()
        out.loc[failed, "detail"] = "the CRM refused the write (see quarantine, stage write)"
    failed_before = outbox.reasons(conn, entity, "crm", outbox.FAILED)
    hit = out["outcome"].isna() & out["hub_id"].isin(failed_before)
    out.loc[hit, ["outcome", "detail"]] = ["quarantined", "an earlier write to the CRM failed (see quarantine)"]
    return out
