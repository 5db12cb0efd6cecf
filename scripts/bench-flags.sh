# Sourced by the benchmark scripts: the flags they load.
#
# bench_flags FILE N: writes a native document of N flags named flag-0 …
# flag-(N-1), each the engine benchmark's shape (a rule of two clauses,
# `country in [US, CA, GB]` and `plan in [pro, enterprise]`, serving a
# 50/50 rollout; off otherwise).
bench_flags() {
  python3 - "$1" "$2" <<'PY'
import json, sys
flag = {"variants": {"on": True, "off": False}, "defaultServe": {"variant": "off"},
        "rules": [{"clauses": [{"attribute": "country", "op": "in", "values": ["US", "CA", "GB"]},
                               {"attribute": "plan", "op": "in", "values": ["pro", "enterprise"]}],
                   "serve": {"rollout": {"weights": {"on": 50, "off": 50}}}}]}
json.dump({"flags": {f"flag-{i}": flag for i in range(int(sys.argv[2]))}}, open(sys.argv[1], "w"))
PY
}
