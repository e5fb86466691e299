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
    TOPIC_PARTITIONS,
    TOPIC_VISIT_CONTRIBUTIONS,
    TOPIC_VISITS,
    TOPIC_VISITS_DLQ,
    TOPIC_VISITS_EFFECTIVE,
)


class StageTopics:
    """The contract's topics as Faust topics of raw bytes: the stages encode and
    decode the contract's models themselves."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        def raw(name: str) -> Any:
            partitions = TOPIC_PARTITIONS[name] or settings.partitions
            return app.topic(settings.topic(name), key_serializer="raw",
                             value_serializer="raw", partitions=partitions)  # fmt: skip

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
    # stage 2: the offset up to which everything is computed (a tick's offset + 1)
    settled_position: int = 0

    def done(self, partition: int, offset: int, outcome: str) -> None:
        self.counts[outcome] += 1
        self.positions[partition] = offset + 1
