"""What an alert says, and the Airflow notifier that sends it when a flow's run fails.

An alert names the flow, what failed (step, failure class, the redacted error), what to do
about it, and links to the console. Three kinds: a failed run, a run stopped because its
reject rate was over the flow's threshold (a failed ``validate`` of class ``data``), and a
stale flow (from the watchdog DAG). Each event alerts once: ``alert_log`` remembers what
was sent; a stale flow is announced again only after ``HUB_STALE_REALERT_MINUTES``.

A robot that answers "too fast" (钉钉 130101) gets nothing more for its ``throttle_seconds``:
alerts meanwhile are held back (``alert_log.errors`` says so) and go merged into its next
message, or into the watchdog's next check (:func:`flush_held`), so none is lost.

The channels themselves (钉钉, 企业微信, SMTP) are connectors/alert_channels.py, listed in
``connectors.NOTIFIERS`` and built by ``flows.roles.notifiers()``: this module names none.

Hub modules are imported inside the functions: DAG files import this module while parsing.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Sequence
from urllib.parse import quote

from airflow.sdk.bases.notifier import BaseNotifier

from hub.errors import Throttled
from hub.types import AlertChannel as Channel, AlertMessage as Message

log = logging.getLogger("flows.alerts")

#: How alert_log.errors marks an alert a channel still owes: "<channel>: held back, …"
HELD, THROTTLED, BACKING_OFF = "held back", "held back, throttled", "held back, backing off"
MERGED_MAX = 20  # held alerts listed in one merged message


@dataclass(frozen=True)
class Alert:
    """One event worth a person's attention."""

    flow: str
    kind: str  # failed | reject_rate | stale | held (held-back alerts sent merged) | test
    headline: str
    facts: list[tuple[str, str]]
    link: str
    dedup_key: str
    run_id: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)


def _console(path: str) -> str:
    from hub import config

    return config.console_url().rstrip("/") + path


def for_failed_run(flow: str, run_id: str, fallback_error: str | None = None) -> Alert:
    """The alert for a failed run, from the run log (the failed step carries the class and error)."""
    from hub import runlog, store
    from hub.errors import ADVICE, redact

    with store.engine().begin() as conn:
        step = runlog.failed_step(conn, run_id)
    if step:
        cls, where, error = step["error_class"] or "internal", step["step"], step["error_text"] or ""
        attempt = step.get("attempt") or 1
    else:
        cls, where, error, attempt = "internal", "unknown step", fallback_error or "no error recorded", 1
    reject = cls == "data" and where == "validate"
    kind = "reject_rate" if reject else "failed"
    headline = (f"{flow}: reject rate over the threshold, run stopped at {where}" if reject
                else f"{flow}: run failed at {where} ({cls})")
    facts = [("flow", flow), ("what failed", f"step {where} (attempt {attempt}), {cls} failure"),
             ("error", redact(error)[:800]), ("what to do", ADVICE.get(cls, ADVICE["internal"])), ("run", run_id)]
    return Alert(flow=flow, kind=kind, headline=headline, facts=facts, run_id=run_id,
                 link=_console(f"/run?id={quote(run_id, safe='')}"), dedup_key=f"{kind}:{run_id}")


def for_stale(health: Any) -> Alert:
    """The alert for a flow without a successful run for longer than its expected interval."""
    last = health.last_run or {}
    facts = [("flow", health.flow), ("what failed", f"no successful run: {health.stale_reason}"),
             ("last run", f"{last.get('run_id', 'none')} ({last.get('status', '—')})"),
             ("what to do", "Check the DAG is not paused and the scheduler runs; if runs fail, open the last one.")]
    if last.get("error_text"):
        facts.insert(3, ("last error", f"{last.get('error_class')}: {last['error_text'][:400]}"))
    since = health.last_success_at.isoformat() if health.last_success_at else "never"
    return Alert(flow=health.flow, kind="stale", headline=f"{health.flow}: stale, {health.stale_reason}",
                 facts=facts, link=_console(f"/#flow-{quote(health.flow)}"), dedup_key=f"stale:{health.flow}:{since}",
                 run_id=last.get("run_id"))


def render(alert: Alert, secrets: Sequence[str] = ()) -> Message:
    """Markdown both robots and a mail reader show well; every known secret blanked out."""
    from hub.errors import redact

    lines = [f"### 集成中心告警 Hub alert: {alert.headline}", ""]
    lines += [f"- **{name}**: {value}" for name, value in alert.facts]
    lines += ["", f"[Open in the hub console]({alert.link})", "", alert.link]
    guard = tuple(s for s in (*secrets, *alert.secrets) if s)
    return Message(title=redact(f"[hub] {alert.headline}", guard)[:200], text=redact("\n".join(lines), guard),
                   link=alert.link)


def _recent(conn, key: str, within: timedelta | None) -> bool:
    from sqlalchemy import or_, select

    from hub import model
    from hub.store import aware, utcnow

    a = model.alert_log.c
    last = conn.execute(select(a.sent_at).where(a.dedup_key == key, or_(
        a.channels != "", a.errors.like(f"%: {HELD}%"))).order_by(a.sent_at.desc()).limit(1)).scalar()
    if last is None:
        return False
    return within is None or utcnow() - aware(last) < within


def _held(conn, channel: str) -> list[Any]:
    """The alert_log rows that hold ``channel`` back and that it has not delivered since, oldest
    first: the alerts it owes, and the watchdog's own flush attempts (kind ``held``, which only
    time its back-off)."""
    from sqlalchemy import select

    from hub import model

    a = model.alert_log.c
    rows = conn.execute(select(a.id, a.kind, a.flow, a.title, a.run_id, a.channels, a.errors, a.sent_at).where(
        a.errors.like(f"%{channel}: {HELD}%")).order_by(a.id)).all()
    return [r for r in rows if channel not in (r.channels or "").split(",")]


def _backing_off(channel: Channel, held: Sequence[Any]) -> bool:
    """True while the channel's last "too fast" answer is younger than its ``throttle_seconds``."""
    from hub.store import aware, utcnow

    refused = [aware(r.sent_at) for r in held if f"{channel.name}: {THROTTLED}" in (r.errors or "")]
    wait = timedelta(seconds=float(getattr(channel, "throttle_seconds", 60)))
    return bool(refused) and utcnow() - max(refused) < wait


def _merged(message: Message, held: Sequence[Any]) -> Message:
    """``message`` plus the alerts held back for the channel (title and console link each)."""
    if not held:
        return message
    lines = [f"- {r.title} ({_console('/run?id=' + quote(r.run_id, safe='')) if r.run_id else _console('/')})"
             for r in held[:MERGED_MAX]]
    if len(held) > MERGED_MAX:
        lines.append(f"- … and {len(held) - MERGED_MAX} more: see *Recent alerts* in the console")
    text = f"{message.text}\n\n**Held back while the robot throttled ({len(held)}):**\n" + "\n".join(lines)
    return Message(message.title, text, message.link)


def _deliver(channels: Sequence[Channel], message: Message) -> tuple[list[str], list[str], dict[str, list[int]]]:
    """Send ``message`` (with what each channel owes merged in) to every channel: (the channels
    that took it, the redacted errors, the held alert ids each one delivered)."""
    from hub import store
    from hub.errors import redact

    secrets = tuple(s for ch in channels for s in ch.secrets())
    took, errors, delivered = [], [], {}
    with store.engine().begin() as conn:
        owed = {ch.name: _held(conn, ch.name) for ch in channels}
    for ch in channels:
        held = owed[ch.name]
        if _backing_off(ch, held):
            errors.append(f"{ch.name}: {BACKING_OFF} (it answered too fast {ch.throttle_seconds:.0f} s ago or less); "
                          "it goes merged into the channel's next message")
            continue
        try:
            ch.send(_merged(message, [r for r in held if r.kind != "held"]))
            took.append(ch.name)
            delivered[ch.name] = [r.id for r in held]
        except Throttled as exc:
            errors.append(f"{ch.name}: {THROTTLED} ({redact(str(exc), secrets)}); it goes merged into the channel's "
                          "next message")
            log.warning("alert channel %s throttled: %s", ch.name, errors[-1])
        except Exception as exc:  # noqa: BLE001 - one broken channel must not silence the others
            errors.append(f"{ch.name}: {redact(f'{type(exc).__name__}: {exc}', secrets)}"[:500])
            log.error("alert channel %s failed: %s", ch.name, errors[-1])
    return took, errors, delivered


def _record(conn, alert: Alert, title: str, took: list[str], errors: list[str],
            delivered: dict[str, list[int]]) -> None:
    """Log the alert, and add each channel to the held rows it has now delivered merged."""
    from sqlalchemy import update

    from hub import model, store

    conn.execute(model.alert_log.insert().values(
        flow=alert.flow, kind=alert.kind, dedup_key=alert.dedup_key, run_id=alert.run_id, title=title,
        channels=",".join(took), errors="; ".join(errors) or None, sent_at=store.utcnow()))
    a = model.alert_log.c
    for name, ids in delivered.items():
        for row in conn.execute(model.alert_log.select().where(a.id.in_(ids))).all() if ids else []:
            done = ",".join(c for c in [*(row.channels or "").split(","), name] if c)
            conn.execute(update(model.alert_log).where(a.id == row.id).values(channels=done))


def send(alert: Alert, channels: Sequence[Channel] | None = None, *, again_after: timedelta | None = None) -> list[str]:
    """Send ``alert`` to every configured channel unless it was sent already (within
    ``again_after``, or ever); returns the channels that took it."""
    from flows import roles
    from hub import store

    eng = store.engine()
    with eng.begin() as conn:
        if _recent(conn, alert.dedup_key, again_after):
            log.info("alert %s already sent", alert.dedup_key)
            return []
    channels = roles.notifiers() if channels is None else list(channels)
    if not channels:
        log.warning("no alert channel configured (connections %s): %s", ", ".join(roles.notifier_connections()),
                    alert.headline)
        return []
    message = render(alert, tuple(s for ch in channels for s in ch.secrets()))
    took, errors, delivered = _deliver(channels, message)
    with eng.begin() as conn:
        _record(conn, alert, message.title, took, errors, delivered)
    log.info("alert %s sent to %s", alert.dedup_key, ", ".join(took) or "no channel")
    return took


def flush_held(channels: Sequence[Channel] | None = None) -> list[str]:
    """Send what a throttled channel still owes, merged into one message, once its back-off
    is over (the watchdog calls this every 15 minutes); returns the channels that sent."""
    from flows import roles
    from hub import store
    from hub.store import utcnow

    channels = roles.notifiers() if channels is None else list(channels)
    with store.engine().begin() as conn:
        owing = [ch for ch in channels if any(r.kind != "held" for r in _held(conn, ch.name))]
    if not owing:
        return []
    stamp = utcnow().isoformat(timespec="seconds")
    alert = Alert(flow="hub", kind="held", headline="alerts held back while a robot throttled",
                  facts=[("what happened", "the robot answered that messages came too fast; these waited"),
                         ("what to do", "nothing, unless it keeps happening: fewer failing runs, or another channel")],
                  link=_console("/"), dedup_key=f"held:{stamp}")
    message = render(alert, tuple(s for ch in owing for s in ch.secrets()))
    took, errors, delivered = _deliver(owing, message)
    with store.engine().begin() as conn:
        _record(conn, alert, message.title, took, errors, delivered)
    return took


def stale_again_after() -> timedelta:
    """How long a flow that stays stale waits before it is announced again."""
    return timedelta(minutes=float(os.environ.get("HUB_STALE_REALERT_MINUTES", "240")))


class HubAlertNotifier(BaseNotifier):
    """Airflow notifier for a DAG's ``on_failure_callback``: alerts the configured
    channels that the flow's run failed, and why."""

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to template (the message comes from the run log); skipping also spares
        the serialized DAG ``dag.test`` hands to callbacks, which has no template env."""

    def notify(self, context: Any) -> None:
        dag = context.get("dag")
        flow = getattr(dag, "dag_id", None) or context["dag_run"].dag_id
        run_id = context.get("run_id") or context["dag_run"].run_id
        reason = context.get("reason")
        send(for_failed_run(flow, run_id, fallback_error=str(reason) if reason else None))


def send_test() -> list[str]:
    """Send a test alert to every configured channel now (no de-duplication)."""
    from hub.store import utcnow

    stamp = utcnow().isoformat(timespec="seconds")
    alert = Alert(flow="hub", kind="test", headline="test alert: the channel works",
                  facts=[("sent", stamp), ("what to do", "nothing, this is a test")], link=_console("/"),
                  dedup_key=f"test:{stamp}")
    return send(alert)


if __name__ == "__main__":  # python -m flows.alerts test
    import sys

    if sys.argv[1:] != ["test"]:
        sys.exit("usage: python -m flows.alerts test")
    took = send_test()
    print(f"test alert taken by: {', '.join(took) or 'no channel (see the log)'}")
    sys.exit(0 if took else 1)
