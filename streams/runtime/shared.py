"""What both stages and the facade share: the Faust topics and the stage counters."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import faust

from vizita.contract.settings import Settings
from vizita.contract.topics import (
    TOPIC_ALERTS,
    TOPIC_INDICATORS,
    TOPIC_VISIT_CONTRIBUTIONS,
    TOPIC_VISITS,
    TOPIC_VISITS_DLQ,
    TOPIC_VISITS_EFFECTIVE,
)


class StageTopics:
    """The contract's topics as Faust topics of raw bytes: the stages encode and
    decode the contract's messages themselves."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        def raw(name: str) -> Any:
            return app.topic(settings.topic(name), key_serializer="raw",
                             value_serializer="raw", partitions=settings.partitions)  # fmt: skip

        self.visits, self.dlq = raw(TOPIC_VISITS), raw(TOPIC_VISITS_DLQ)
        self.effective = raw(TOPIC_VISITS_EFFECTIVE)
        self.contributions = raw(TOPIC_VISIT_CONTRIBUTIONS)
        self.indicators, self.alerts = raw(TOPIC_INDICATORS), raw(TOPIC_ALERTS)


@dataclass
class StreamStats:
    """What the stages have done since they started; `vizita replay` reads it in-process."""

    counts: Counter[str] = field(default_factory=Counter)
    # partition -> next offset to process, of the `visits` topic
    positions: dict[int, int] = field(default_factory=dict)
    # stage 2: partition -> the offset up to which everything is computed (a tick's + 1)
    settled: dict[int, int] = field(default_factory=dict)

    def done(self, outcomes: Counter[str], positions: dict[int, int]) -> None:
        self.counts.update(outcomes)
        for partition, position in positions.items():
            self.positions[partition] = max(self.positions.get(partition, 0), position)
