"""Shop connectors (issue 12): 淘宝/天猫 TOP, 京东 JOS, 有赞, 抖店, 拼多多.

One module per platform (``taobao``, ``jd``, ``youzan``, ``doudian``, ``pdd``), each exposing
``PLATFORM``; the shared pieces are the one signer (``signer``), exact money (``money``), the
``Platform`` protocol (``platform``), carrier codes (``carriers.yaml``) and the seat (``seat``).
See /tmp contract: docs/shops.md once written."""
