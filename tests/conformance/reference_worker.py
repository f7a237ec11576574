"""Play conformance scenarios on fluxgate 0.9.4, in the reference venv.

Protocol: one JSON object per line.  On start the worker writes
``{"ready": <fluxgate version>}``; then for each request ``{"scenario": ...}``
read from stdin it writes ``{"trace": [...]}``, or ``{"error": <traceback>}``
if the runner itself failed.  It exits at the end of stdin.

0.9.4 stamps each ``Record`` through the ``time.time`` it bound at import
(SPEC.md section 2, a deliberate difference), so under freezegun its records
would carry real time.  Importing it while a freezer is active binds
freezegun's ``time`` instead, which reads real time when nothing is frozen and
the frozen time inside each scenario: the clock this package reads natively.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from importlib import metadata

from freezegun import freeze_time


def main() -> int:
    replies = sys.stdout
    sys.stdout = sys.stderr  # nothing but replies on the protocol stream
    freezer = freeze_time("2000-01-01 00:00:00", real_asyncio=True)
    freezer.start()
    import fluxgate  # noqa: F401  (bound to freezegun's clock, see above)
    # The runner shared with the test suite, from this script's directory.
    scenario = importlib.import_module("scenario")

    def reply(message: object) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    reply({"ready": metadata.version("fluxgate")})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            reply({"trace": scenario.run(request["scenario"])})
        except Exception:
            reply({"error": traceback.format_exc()})
    freezer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
