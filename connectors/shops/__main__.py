"""``python -m connectors.shops sign PLATFORM --secret S --params '<json>' [--method M] [--path P]
[--sign-method …] [--explain]``: the signature a platform expects, and with ``--explain`` the text
that was hashed (secret shown as <secret>): the first thing to run on "invalid signature"."""
from __future__ import annotations

import argparse
import json
import sys

from connectors.shops.signer import SIGN_METHODS, sign
from hub.errors import ConfigurationError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m connectors.shops")
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sign", help="sign one request the way the platform does")
    s.add_argument("platform", choices=sorted(SIGN_METHODS))
    s.add_argument("--secret", required=True, help="the app secret (never logged)")
    s.add_argument("--params", required=True, help="the request parameters as a JSON object")
    s.add_argument("--method", help="API name (TOP/JOS method, PDD type, 抖店 method)")
    s.add_argument("--path", help="抖店 path, e.g. /order/searchList (method derived from it)")
    s.add_argument("--sign-method", dest="sign_method", help="md5 | hmac (TOP) | hmac-sha256 (抖店)")
    s.add_argument("--explain", action="store_true", help="also print the text that was hashed")
    args = ap.parse_args(argv)
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        print(f"--params is not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(params, dict):
        print("--params must be a JSON object", file=sys.stderr)
        return 2
    try:
        signed = sign(args.platform, args.secret, params, method=args.method, path=args.path,
                      sign_method=args.sign_method)
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(signed.sign)
    if args.explain:
        print(f"algorithm: {signed.algorithm}")
        print(f"signed text: {signed.signed_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
