"""Helpers shared by the verification tests."""

from __future__ import annotations

import json


def comparable(verification: dict) -> dict:
    """The records without what differs between any two runs: timings, the clock, the machine's threads."""
    records = json.loads(json.dumps(verification["records"]))
    for record in records.values():
        for key in ("timings", "verified_at", "runtime"):
            record.pop(key, None)
    return records
