# Reads the Prometheus text format on stdin with the reference parser
# (python3-prometheus-client) and prints its samples as JSON lines,
# {"name", "labels", "value", "type"}; exits 1 with the parser's error
# when the text does not parse.
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    for family in text_string_to_metric_families(sys.stdin.read()):
        for s in family.samples:
            print(json.dumps({"name": s.name, "labels": s.labels, "value": s.value,
                              "type": family.type}, sort_keys=True))
except Exception as e:  # the parser raises ValueError and others
    print("parse error: %s" % e, file=sys.stderr)
    sys.exit(1)
