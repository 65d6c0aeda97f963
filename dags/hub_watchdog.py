"""hub_watchdog (Airflow DAG): every 15 minutes, alert on hub flows without a recent successful run."""
from flows.watchdog import watchdog_dag

dag = watchdog_dag()
