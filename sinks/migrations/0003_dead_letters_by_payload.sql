-- 0003: one dead letter per distinct payload (SPEC §5), whatever its source; and the
-- rows the store refused for good.
--
-- `dead_letters` is keyed by the payload's SHA-256: the same bytes sent again, or a
-- file replayed twice, replace their row instead of adding one. `version` keeps the
-- first arrival (the greatest version wins, and it falls as received_at grows). The
-- table is rebuilt in place from itself (CREATE OR REPLACE ... AS SELECT reads only the
-- columns 0001 had), so running this again changes nothing. How long payloads are kept
-- (they may hold what a form added, a name say) is a setting, applied at every start
-- (sinks.migrations.apply_retention).
-- On a cluster each shard rebuilds its own rows, and the Distributed table is made
-- again over the new columns, sharded by the new key. A cluster store applies 0003
-- right after 0001, while the table is still empty, so no row is left on a shard its
-- new key does not name.
CREATE OR REPLACE TABLE {db}.{local:dead_letters}{on_cluster}
(
    received_at     DateTime64(3, 'UTC'),
    reason          LowCardinality(String),
    field           String,
    detail          String,
    payload         String,
    source          String,
    payload_sha256  FixedString(32),
    version         UInt64
)
ENGINE = {engine:ReplacingMergeTree(version)}
PARTITION BY toYYYYMM(received_at)
ORDER BY payload_sha256
SETTINGS {dedup_window} = 1000
AS SELECT received_at, reason, field, detail, payload, source,
          unhex(hex(SHA256(payload))) AS payload_sha256,
          toUInt64(9223372036854775807 - toUnixTimestamp64Milli(received_at)) AS version
FROM {db}.{local:dead_letters};

{distributed:dead_letters:cityHash64(payload_sha256)};

-- A row the store can never take (a value it refuses), with why and where it came from:
-- it no longer blocks the rows behind it. `row` is the row as JSON.
CREATE TABLE IF NOT EXISTS {db}.{local:store_rejects}{on_cluster}
(
    rejected_at  DateTime64(3, 'UTC'),
    target       LowCardinality(String),
    reason       String,
    row          String,
    source       String
)
ENGINE = {engine:ReplacingMergeTree}
PARTITION BY toYYYYMM(rejected_at)
ORDER BY (target, source, row)
SETTINGS {dedup_window} = 1000;

{distributed:store_rejects:cityHash64(target, source, row)};
