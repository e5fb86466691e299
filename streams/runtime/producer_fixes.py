"""A fix to aiokafka 0.14's producer, without which a worker's first start could stall
for good (seen: stage 1 waiting on its changelog writes for 120 s, every batch for
`visit-state-changelog` held with no leader known, the producer asking the broker for
metadata again and again).

aiokafka's client asks the broker for the metadata of the topics it tracks, or of all
of them while it tracks none. A send to a topic waits for its metadata
(`_wait_on_metadata`), but starts tracking the topic only if its metadata is missing:
one known from a fetch of all topics is never tracked. Once the client tracks any
topic, every refresh asks for those alone and drops the others from what it knows, and
a batch for an untracked topic then waits for a leader no refresh will bring, until
it expires (Faust's producer request timeout: 20 minutes). `TrackingProducer` tracks
every topic it is asked to send to before it sends.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka


class TrackingProducer(aiokafka.AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    _tracked: frozenset[str] = frozenset()

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        self._track(topic)
        return await super().send(topic, *args, **kwargs)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        self._track(topic)
        return await super().send_batch(batch, topic, partition=partition)

    def _track(self, topic: str) -> None:
        if topic not in self._tracked:
            self.client.add_topic(topic)  # refreshes the metadata if it was untracked
            self._tracked = self._tracked | {topic}


class VizitaProducer(faust_aiokafka.Producer):
    @property
    def _producer_type(self) -> type[aiokafka.AIOKafkaProducer]:
        return TrackingProducer
