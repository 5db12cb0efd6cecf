"""Evaluates flags against a Vexil server with the official OpenFeature
Python SDK and OFREP provider, and prints the results as JSON.

Env: VEXIL_URL (base URL), VEXIL_CLIENT_KEY (a client key).
"""

import json
import os

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

key = os.environ["VEXIL_CLIENT_KEY"]
api.set_provider(
    OFREPProvider(
        os.environ["VEXIL_URL"],
        headers_factory=lambda: {"Authorization": f"Bearer {key}"},
    )
)
client = api.get_client()


def details(d):
    reason = getattr(d.reason, "value", d.reason)
    code = getattr(d.error_code, "value", d.error_code)
    return {"value": d.value, "variant": d.variant, "reason": reason, "errorCode": code}


user = EvaluationContext("u1", {"plan": "pro"})
out = {
    "checkout": details(client.get_boolean_details("checkout", False, user)),
    "ratio": details(client.get_float_details("ratio", 0.0, user)),
    "count": details(client.get_integer_details("count", 0, user)),
    "dark": details(client.get_boolean_details("dark", True, user)),
    "missing": details(client.get_boolean_details("nope", True, user)),
    "split-no-key": details(client.get_string_details("split", "fallback", EvaluationContext(None, {}))),
    "no-context": details(client.get_boolean_details("checkout", True)),
}
print(json.dumps(out, sort_keys=True))
