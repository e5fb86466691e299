-- 0002: consumer lag, measured periodically (sinks/lag.py) so the pipeline-health
-- dashboard and its alert rule can show how far each consumer group is behind.
-- A measurement is only ever added, never replaced: a plain MergeTree. Old
-- measurements expire after 90 days. On a cluster one series (group, topic,
-- partition) stays on one shard.
CREATE TABLE IF NOT EXISTS {db}.{local:consumer_lag}{on_cluster}
(
    measured_at       DateTime64(3, 'UTC'),
    consumer_group    LowCardinality(String),
    topic             LowCardinality(String),
    partition         UInt32,
    end_offset        UInt64,
    committed_offset  UInt64,
    lag               UInt64
)
ENGINE = {engine:MergeTree}
PARTITION BY toYYYYMM(measured_at)
ORDER BY (consumer_group, topic, partition, measured_at)
TTL toDateTime(measured_at) + INTERVAL 90 DAY
SETTINGS {dedup_window} = 1000;

{distributed:consumer_lag:cityHash64(consumer_group, topic, partition)};
