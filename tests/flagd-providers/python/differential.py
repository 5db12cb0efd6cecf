"""Evaluates Vexil's flagd translation with the official flagd provider
(in-process, reading the document from a file) and compares every answer
with the one Vexil's engine gave for the native document.

Usage: differential.py CASES.json

CASES.json holds {"document": <flagd document>, "cases": [{"flag", "type",
"context", "expect": {"value", "variant", "reason", "errorCode",
"metadata"}}]}, written by crates/vexil/tests/it/flagd_differential.rs.
"value" is compared only when "variant" is not null (without a variant the
provider answers with the caller's default); "metadata" only when present.
Exits 0 when every case agrees, 1 with a diff of each mismatch otherwise.
"""

import json
import math
import os
import sys
import tempfile
import time

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import ProviderStatus

DEFAULTS = {"boolean": False, "string": "", "number": 0.0, "object": {}}


def same(a, b):
    """JSON equality with numbers by value (the provider reads 1.0 as 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=0, abs_tol=0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def evaluate(client, case):
    ctx = dict(case["context"])
    key = ctx.pop("targetingKey", None)
    context = EvaluationContext(key, ctx)
    flag, kind = case["flag"], case["type"]
    get = {
        "boolean": client.get_boolean_details,
        "string": client.get_string_details,
        "number": client.get_float_details,
        "object": client.get_object_details,
    }[kind]
    d = get(flag, DEFAULTS[kind], context)
    return {
        "value": d.value,
        "variant": d.variant,
        "reason": getattr(d.reason, "value", d.reason),
        "errorCode": getattr(d.error_code, "value", d.error_code),
        "metadata": dict(d.flag_metadata or {}),
    }


def mismatch(got, expect):
    if got["variant"] != expect["variant"]:
        return True
    if expect["variant"] is not None and not same(got["value"], expect["value"]):
        return True
    if got["reason"] != expect["reason"] or got["errorCode"] != expect["errorCode"]:
        return True
    return "metadata" in expect and not same(got["metadata"], expect["metadata"])


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "flags.json")
        with open(path, "w") as f:
            json.dump(cases["document"], f)
        api.set_provider(
            FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=path)
        )
        client = api.get_client()
        deadline = time.monotonic() + 10
        while client.get_provider_status() != ProviderStatus.READY:
            if time.monotonic() > deadline:
                print(f"provider not ready: {client.get_provider_status()}", file=sys.stderr)
                return 2
            time.sleep(0.01)
        failures = 0
        for n, case in enumerate(cases["cases"]):
            got = evaluate(client, case)
            if mismatch(got, case["expect"]):
                failures += 1
                if failures <= 20:
                    print(
                        f"case {n}: flag {case['flag']!r} ({case['type']}), "
                        f"context {json.dumps(case['context'])}\n"
                        f"  vexil:  {json.dumps(case['expect'], sort_keys=True)}\n"
                        f"  flagd:  {json.dumps(got, sort_keys=True, default=str)}\n"
                        f"  flag:   {json.dumps(cases['document']['flags'].get(case['flag']))}",
                        file=sys.stderr,
                    )
        api.shutdown()
    print(f"{len(cases['cases'])} cases, {failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
