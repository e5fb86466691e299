"""Print a store's tables as canonical JSON (run as a script: a process holds one
embedded store, so the tests read a worker's store in a process of its own).

    python tests/dump_store.py chdb:///path DATABASE

`dump` reads the same from a store the calling process holds.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from sinks.store import Store, open_store

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
    # Where each came from: it names the scenario's own topics, so it is read apart.
    "dead_letter_sources": (
        "SELECT hex(payload) AS payload, source FROM {db}.dead_letters FINAL ORDER BY payload"
    ),
    "store_rejects": (
        "SELECT target, reason, source FROM {db}.store_rejects FINAL ORDER BY target, source"
    ),
    "active_alerts": (
        "SELECT municipality, indicator, window_days, state, value, target, denominator, as_of "
        "FROM {db}.active_alerts ORDER BY municipality, indicator"
    ),
}


def dump(store: Store) -> dict[str, Any]:
    """The tables as plain JSON values (what the script prints, read back)."""
    tables = {name: store.query(sql.format(db=store.database)) for name, sql in QUERIES.items()}
    return dict(json.loads(json.dumps(tables, default=str, sort_keys=True)))


def main() -> None:
    url, database = sys.argv[1], sys.argv[2]
    store = open_store(url, database)
    tables = dump(store)
    store.close()
    print(json.dumps(tables, sort_keys=True))


if __name__ == "__main__":
    main()
