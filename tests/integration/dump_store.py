"""Print a store's tables as canonical JSON (run as a script: a process holds one
embedded store, so the tests read a worker's store in a process of its own).

    python tests/integration/dump_store.py chdb:///path DATABASE
"""

from __future__ import annotations

import json
import sys

from sinks.store import open_store

QUERIES = {
    "visits": "SELECT * EXCEPT (version, stored_at) FROM {db}.visits FINAL ORDER BY visit_id",
    "indicator_values": (
        "SELECT municipality, indicator, window_days, as_of, numerator, denominator, value "
        "FROM {db}.indicator_values FINAL ORDER BY municipality, indicator, window_days, as_of"
    ),
    "dead_letters": (
        "SELECT reason, field, detail, hex(payload) AS payload FROM {db}.dead_letters FINAL "
        "ORDER BY payload, reason"
    ),
    "active_alerts": (
        "SELECT municipality, indicator, window_days, state, value, target, denominator, as_of "
        "FROM {db}.active_alerts ORDER BY municipality, indicator"
    ),
}


def main() -> None:
    url, database = sys.argv[1], sys.argv[2]
    store = open_store(url, database)
    dump = {name: store.query(sql.format(db=database)) for name, sql in QUERIES.items()}
    store.close()
    print(json.dumps(dump, default=str, sort_keys=True))


if __name__ == "__main__":
    main()
