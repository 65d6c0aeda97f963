"""Local stand-ins of the external systems the hub talks to.

``crm_app`` answers like 销售易 (NeoCRM) OpenAPI, ``u8_app`` like the 用友 U8 OpenAPI, and
``u8.db`` is a SQLite database with U8's real table layout for ODBC reads.  ``seed`` fills both
with messy, deterministic data and writes the ground truth.  This package deliberately imports
nothing from the hub: it is the other side of the wire.  See sandbox/README.md.
"""
