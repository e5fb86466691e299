"""The producer tracks every topic it sends to (streams.runtime.producer_fixes): aiokafka
tracks a topic only if its metadata was missing at the first send, and once it tracks
any, a refresh drops the untracked ones (a batch for one then waits for ever)."""

from __future__ import annotations

import asyncio

from streams.runtime.producer_fixes import TrackingProducer


def _tracked_after(topics: list[str], known: set[str]) -> set[str]:
    async def run() -> set[str]:
        producer = TrackingProducer(bootstrap_servers="127.0.0.1:9")  # never started
        producer.client.cluster.partitions_for_topic = lambda topic: {0} if topic in known else None
        for topic in topics:
            producer._track(topic)
        return set(producer.client._topics)

    return asyncio.run(run())


def test_a_topic_known_from_a_fetch_of_all_is_tracked_all_the_same() -> None:
    assert _tracked_after(["changelog", "visits"], known={"changelog"}) == {"changelog", "visits"}


def test_aiokafka_alone_leaves_a_known_topic_untracked() -> None:
    """The fault itself: if aiokafka ever tracks such a topic, the fix can go."""

    async def run() -> set[str]:
        producer = TrackingProducer(bootstrap_servers="127.0.0.1:9")
        producer.client.cluster.partitions_for_topic = lambda topic: {0}
        await producer.client._wait_on_metadata("changelog")
        return set(producer.client._topics)

    assert asyncio.run(run()) == set()
