"""Build a flow's Airflow DAG: one task per step, retries with backoff, assets, callbacks.

DAG files stay thin: they call :func:`flow_dag`. Heavy imports (pandas, GX, the flow
module) happen inside the tasks, never while the DAG file is parsed. The deployment's bindings
are checked while it is parsed (YAML and connectors.SYSTEMS, nothing heavier): a bad line fails
the DAG import with the file and line, not a task at 3 a.m.
"""
from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any, Mapping, Sequence

import pendulum
from airflow.sdk import DAG, Asset, task

from flows import roles, settings
from flows.alerts import HubAlertNotifier
from hub.runner import STEPS
from hub.types import ROLES

ASSET_PREFIX = "hub://"


def asset(entity: str) -> Asset:
    """The Airflow asset a flow emits when an entity's records are in the hub and its targets."""
    return Asset(f"{ASSET_PREFIX}{entity}", group="hub")


def emit_asset_event(entity: str, extra: dict[str, Any]) -> bool:
    """One asset event on ``hub://<entity>`` through Airflow's asset manager, as the API server's own
    ``POST /api/v2/assets/events`` route records one (same process, same metadata DB, no credentials
    needed): the DAGs that consume it run sooner. False (logged) when the asset is not known yet (no
    DAG that consumes it has been parsed); the next scheduled run picks up what arrived."""
    import logging

    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    target = asset(entity)
    with create_session() as session:
        model = session.scalar(select(AssetModel).where(AssetModel.name == target.name,
                                                        AssetModel.uri == target.uri).limit(1))
        if model is None:
            logging.getLogger("flows.dag").warning("asset %s is not registered in Airflow (no DAG consuming it has "
                                                   "been parsed): what arrived waits for the next scheduled run", target.uri)
            return False
        event = asset_manager.register_asset_change(asset=model, extra=extra, source_is_api=True, session=session)
    return event is not None


def _run_step(flow: str, module: str, step: str, **context: Any) -> dict[str, int]:
    from airflow.sdk.exceptions import AirflowFailException

    from hub import runner
    from hub.errors import ConfigurationError, DataError

    functions = importlib.import_module(module).STEP_FUNCTIONS
    ti = context.get("ti")
    try:
        counts = runner.run_step(flow, step, context["run_id"], functions[step],
                                 log_url=getattr(ti, "log_url", None))
    except (ConfigurationError, DataError) as exc:
        # a person must act: retrying would only repeat the failure
        raise AirflowFailException(str(exc)) from None
    if step == STEPS[-1]:
        from hub import report

        runner.finish_run(context["run_id"], "success")
        report.save(context["run_id"])
    return counts


def _on_failure(context: dict[str, Any]) -> None:
    """Close the run's row as failed (its failed step's class and error are copied to it)."""
    from hub import runner

    runner.finish_run(context["run_id"], "failed", context.get("exception"))


#: A failed run first closes its run row, then alerts the configured channels (connections
#: hub_alert_smtp, hub_alert_dingtalk, hub_alert_wecom; see connectors/alert_channels.py).
ON_FAILURE = [_on_failure, HubAlertNotifier()]


def _schedule(schedule: timedelta | str | None, consumes: Sequence[str], after_any: Sequence[str] = ()) -> Any:
    """Assets alone (run when every consumed entity was updated), or assets *or* a timer when
    both are given: a flow whose source changes on its own (CRM orders, U8 dispatches) must not
    wait for an upstream that has nothing new. ``after_any``: entities any one of which also
    starts a run (shop orders start sales_orders without new customers or products)."""
    if not consumes and not after_any:
        return schedule
    assets: Any = [asset(e) for e in consumes]
    if after_any:
        from airflow.sdk import AssetAll, AssetAny

        assets = AssetAny(*([AssetAll(*assets)] if assets else []), *[asset(e) for e in after_any])
    if schedule is None:
        return assets
    from airflow.timetables.assets import AssetOrTimeSchedule
    from airflow.timetables.trigger import CronTriggerTimetable, DeltaTriggerTimetable

    timer = DeltaTriggerTimetable(schedule) if isinstance(schedule, timedelta) else CronTriggerTimetable(schedule, timezone="UTC")
    return AssetOrTimeSchedule(timetable=timer, assets=assets)


def flow_dag(flow: str, module: str, *, schedule: timedelta | str | None, produces: Sequence[str] = (),
             consumes: Sequence[str] = (), doc: str = "", pools: Mapping[str, str] | None = None,
             after_any: Sequence[str] = ()) -> DAG:
    """A DAG running ``module``'s STEP_FUNCTIONS in order; ``pools`` puts named steps in an
    Airflow pool (e.g. the registry lookups in ``registry_api``) to bound them across DAGs."""
    roles.validate()  # a bad bindings line: a ConfigurationError naming file:line fails this DAG's import
    default_args = {
        "retries": settings.TASK_RETRIES, "retry_delay": timedelta(seconds=settings.RETRY_DELAY_S),
        "retry_exponential_backoff": 2.0, "max_retry_delay": timedelta(seconds=settings.MAX_RETRY_DELAY_S),
        "on_failure_callback": None,
    }
    with DAG(dag_id=flow, schedule=_schedule(schedule, consumes, after_any),
             start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, max_active_runs=1,
             default_args=default_args, on_failure_callback=ON_FAILURE, tags=["hub", *produces],
             doc_md=doc) as dag:
        previous = None
        for step in STEPS:
            outlets = [asset(e) for e in produces] if step == STEPS[-1] else []
            pool = {"pool": pools[step]} if pools and step in pools else {}
            op = task(task_id=step, outlets=outlets, **pool)(_run_step).override(task_id=step)(flow=flow, module=module, step=step)
            if previous is not None:
                previous >> op
            previous = op
    return dag


def spec_dag(flow: str) -> DAG | None:
    """The DAG of ``flows/specs/<flow>.yaml``, or None where a seat it needs does not take part
    (``needs: {erp: receipts}`` under SAP bindings): the flow is then not offered at all. Texts
    saying ``{erp}`` / ``{crm}`` get the bound systems' labels, so the UI names them."""
    from flows import spec as flow_spec

    roles.validate()
    fs = flow_spec.load(flow)
    if not all(roles.offers(role, capability) for role, capability in fs.needs.items()):
        return None
    labels = {role: " / ".join(b.label for b in roles.seats(role)) or role for role in ROLES}
    return flow_dag(fs.flow, fs.hooks, schedule=fs.schedule, produces=fs.produces, consumes=fs.consumes,
                    doc=fs.doc.format(**labels), pools=fs.pools or None, after_any=fs.after_any)
