"""销售易 in the ``crm`` seat: the CRM core's connector built from its binding."""
from __future__ import annotations

from typing import Mapping, Sequence

from connectors.xiaoshouyi import XiaoshouyiConnector
from connectors.seat import Seat


class XiaoshouyiCrm(Seat):
    """The ``crm`` seat played by 销售易 (bindings: ``system: xiaoshouyi``, connection ``api``)."""

    def connector(self, streams: Mapping[str, Sequence[str]] | None = None,
                  natural_keys: Mapping[str, str] | None = None) -> XiaoshouyiConnector:
        """Reading ``streams`` (field lists per object); ``natural_keys`` per object make creates
        safe to repeat (looked up before a create whose answer was lost)."""
        return XiaoshouyiConnector(self.binding.connection("api"), streams=dict(streams or {}),
                                   natural_keys=dict(natural_keys or {}))
