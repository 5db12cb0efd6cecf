"""Drives the official OpenFeature flagd provider against Vexil's gRPC
services, for crates/vexil-server/tests/it/flagd_providers.rs.

Usage: check.py rpc|in-process, with VEXIL_GRPC (host:port), VEXIL_SELECTOR
and optionally VEXIL_KEY (sent as `authorization: Bearer`, which needs call
credentials: local channel credentials on a loopback address).

Speaks in lines: prints one JSON object per step and waits for a line on
standard input before the next step.
 1. the evaluations of every flag type;
 2. (after the test changed `ratio`) what shows the change: RPC mode the
    configuration-change event, in-process mode the next evaluation;
 3. (after the test restarted the server and changed `ratio` back) the
    value once the provider has reconnected.
"""

import json
import os
import sys
import threading
import time

import grpc
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import CacheType, ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent


def details(d):
    return {
        "value": d.value,
        "variant": d.variant,
        "reason": str(d.reason.value if hasattr(d.reason, "value") else d.reason)
        if d.reason is not None
        else None,
        "errorCode": d.error_code.value if d.error_code is not None else None,
    }


def evaluate(client):
    pro = EvaluationContext(targeting_key="user-1", attributes={"plan": "pro"})
    gold = EvaluationContext(targeting_key="user-1", attributes={"tier": "gold"})
    return {
        "checkout": details(client.get_boolean_details("checkout", False, pro)),
        "beta": details(client.get_boolean_details("beta", False, gold)),
        "greeting": details(client.get_string_details("greeting", "fallback")),
        "ratio": details(client.get_float_details("ratio", -1.0)),
        "count": details(client.get_integer_details("count", -1)),
        "theme": details(client.get_object_details("theme", {})),
        "missing": details(client.get_boolean_details("missing", True)),
    }


def wait_for(pred, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = pred()
        if got is not None:
            return got
        time.sleep(0.1)
    return None


def main():
    mode = sys.argv[1]
    host, port = os.environ["VEXIL_GRPC"].rsplit(":", 1)
    key = os.environ.get("VEXIL_KEY")
    credentials = None
    if key:
        credentials = grpc.composite_channel_credentials(
            grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
            grpc.access_token_call_credentials(key),
        )
    provider = FlagdProvider(
        host=host,
        port=int(port),
        resolver_type=ResolverType.RPC if mode == "rpc" else ResolverType.IN_PROCESS,
        selector=os.environ["VEXIL_SELECTOR"],
        channel_credentials=credentials,
        deadline_ms=2000,
        retry_backoff_ms=200,
        retry_backoff_max_ms=1000,
        retry_grace_period=30,
        cache=CacheType.DISABLED,
    )
    changed = []
    got_change = threading.Event()

    def on_change(event):
        changed.extend(event.flags_changed or [])
        got_change.set()

    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_change)
    api.set_provider(provider)
    client = api.get_client()
    ready = wait_for(
        lambda: True if client.get_provider_status().value == "READY" else None, 10
    )
    if not ready:
        print(json.dumps({"error": "provider not ready"}), flush=True)
        return 1
    print(json.dumps(evaluate(client)), flush=True)

    sys.stdin.readline()
    if mode == "rpc":
        got_change.wait(10)
    ratio = wait_for(
        lambda: v if (v := client.get_float_value("ratio", -1.0)) == 0.5 else None, 10
    )
    print(json.dumps({"changed": sorted(set(changed)), "ratio": ratio}), flush=True)

    sys.stdin.readline()
    ratio = wait_for(
        lambda: v if (v := client.get_float_value("ratio", -1.0)) == 2.0 else None, 30
    )
    print(json.dumps({"ratio": ratio}), flush=True)
    api.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
