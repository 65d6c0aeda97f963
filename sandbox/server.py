"""Run the stand-ins in one process: uvicorn servers (CRM, U8 and, each when given a port, the
registry, SAP S/4HANA, SAP ECC and the shop platforms) on one event loop.

Prints exactly one line, ``sandbox ready crm=... u8=...`` (plus `` registry=...`` and
`` sap=...`` for those served), once every socket accepts connections (callers wait for it),
and stops them all on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import uvicorn

from .crm_app import ACCESS_TTL_S, create_crm_app
from .dingtalk_app import create_dingtalk_app
from .ecology_app import create_ecology_app
from .faults import KINDS, FaultConfig, Faults
from .registry_app import create_registry_app
from .sap_ecc_app import create_sap_ecc_app
from .sap_s4_app import create_sap_s4_app
from .shops_app import create_shops_app
from .u8_app import TOKEN_TTL_S, create_u8_app


@dataclass
class ServeOptions:
    """Everything ``python -m sandbox serve`` can set."""

    directory: Path
    host: str = "127.0.0.1"
    crm_port: int = 18701
    u8_port: int = 18702
    registry_port: int | None = None  # None: the registry stand-in is not served
    sap_port: int | None = None  # None: the SAP S/4HANA stand-in is not served
    ecc_port: int | None = None  # None: the SAP ECC (SOAP) stand-in is not served
    shops_port: int | None = None  # None: the shop platforms' stand-in is not served
    oa_port: int | None = None  # None: the 泛微 e-cology stand-in is not served
    dingtalk_port: int | None = None  # None: the 钉钉 approvals stand-in is not served
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = KINDS
    fault_seed: int = 1
    slow_seconds: float = 2.0
    crm_token_ttl: float = ACCESS_TTL_S
    u8_token_ttl: float = TOKEN_TTL_S


class _Server(uvicorn.Server):
    """uvicorn server that leaves signal handling to us (two servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


async def serve(opts: ServeOptions) -> int:
    """Serve until a signal arrives; returns the process exit status."""
    def faults() -> Faults:
        return Faults(FaultConfig(opts.fault_rate, list(opts.fault_kinds), opts.fault_seed, opts.slow_seconds))

    apps = {
        "crm": (create_crm_app(opts.directory, faults(), opts.crm_token_ttl), opts.crm_port),
        "u8": (create_u8_app(opts.directory, faults(), opts.u8_token_ttl), opts.u8_port),
    }
    optional: dict[str, tuple[int | None, Callable[[], Any]]] = {  # name in the ready line: (port, app)
        "registry": (opts.registry_port, lambda: create_registry_app(opts.directory, faults())),
        "sap": (opts.sap_port, lambda: create_sap_s4_app(opts.directory, faults())),
        "ecc": (opts.ecc_port, lambda: create_sap_ecc_app(opts.directory, faults())),
        "shops": (opts.shops_port, lambda: create_shops_app(opts.directory, faults())),
        "oa": (opts.oa_port, lambda: create_ecology_app(opts.directory, faults())),
        "dingtalk": (opts.dingtalk_port, lambda: create_dingtalk_app(opts.directory, faults())),
    }
    for name, (port, make) in optional.items():
        if port:
            apps[name] = (make(), port)
    servers = [
        _Server(uvicorn.Config(app, host=opts.host, port=port, log_level="warning", access_log=False,
                               lifespan="off", timeout_graceful_shutdown=2))
        for app, port in apps.values()
    ]
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for s in servers:
            s.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    async def run_one(server: _Server) -> int:
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn's way of failing startup (e.g. port in use; it logged why)
            return int(exc.code or 1)
        return 0

    tasks = [asyncio.create_task(run_one(s)) for s in servers]
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            return 1
        await asyncio.sleep(0.02)
    while not all(_port_open(opts.host, port) for _, port in apps.values()):
        await asyncio.sleep(0.02)
    print("sandbox ready " + " ".join(f"{name}=http://{opts.host}:{port}" for name, (_, port) in apps.items()),
          flush=True)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return 0 if all(r == 0 for r in results) else 1


#: What ``seed`` writes and ``serve`` needs (an optional stand-in's file only when it is served).
SEEDED_FILES = ("crm.db", "u8.db", "credentials.json")
REGISTRY_FILE = "registry.jsonl"
SAP_S4_FILE = "sap_s4.db"
#: The file each optional stand-in needs, by its ``ServeOptions`` port field.
OPTIONAL_FILES = {"registry_port": REGISTRY_FILE, "sap_port": SAP_S4_FILE, "ecc_port": "sap_ecc.db",
                  "shops_port": "shops.db"}


def run(opts: ServeOptions) -> int:
    """Blocking entry point for the CLI."""
    for name in (*SEEDED_FILES, *(f for port, f in OPTIONAL_FILES.items() if getattr(opts, port))):
        if not (opts.directory / name).exists():
            print(f"sandbox: {opts.directory / name} is missing; run `python -m sandbox seed` first",
                  file=sys.stderr)
            return 2
    return asyncio.run(serve(opts))
