"""The loop every SDK script runs: one JSON case per line on stdin, one JSON answer per line on stdout.

A case the script could not run at all is answered {"status": -1, "exception": "<class>: <message>"}, which the
gateway's tests report as a failure with that text.
"""

import json
import sys


def serve(run):
    """Answers each case read from stdin with run(case), until stdin ends."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result = run(json.loads(line))
        except Exception as e:  # noqa: BLE001 - reported to the test, which fails with it
            result = {"status": -1, "exception": f"{type(e).__name__}: {e}"}
        print(json.dumps(result), flush=True)
