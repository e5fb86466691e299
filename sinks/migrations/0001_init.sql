-- 0001: the tables of SPEC §5. `{db}` is the database name from the settings; the
-- other markers render this text for one node or for a cluster (sinks/ddl.py).
-- Every statement is idempotent: a half-applied migration can simply run again.
-- On a cluster each table below is Distributed over `<table>_local` on every shard,
-- sharded by its replacing key (or a prefix of it), so that all the rows FINAL
-- replaces one with another are on one shard.

-- One row per visit_id: its winning event (SPEC §1). `version` is the winner's revision
-- and submitted_at (streams/revisions.py, VisitState.version), so it depends on the
-- events alone. A correction can move a visit to another month, so its old
-- row sits in another partition, where background merges never reach it; `FINAL`
-- still replaces it, because FINAL merges across partitions unless
-- do_not_merge_across_partitions_select_final is set (never set it for this table).
CREATE TABLE IF NOT EXISTS {db}.{local:visits}{on_cluster}
(
    visit_id          String,
    event_id          String,
    schema_version    UInt8,
    revision          UInt32,
    op                LowCardinality(String),
    occurred_at       Nullable(DateTime64(3, 'UTC')),
    submitted_at      DateTime64(3, 'UTC'),
    municipality      LowCardinality(String),
    facility_id       Nullable(String),
    nurse_id          Nullable(String),
    household_id      Nullable(String),
    child_age_months  Nullable(UInt8),
    pregnant          Nullable(Bool),
    visit_type        LowCardinality(Nullable(String)),
    outcome           LowCardinality(Nullable(String)),
    topics            Array(LowCardinality(String)),
    risk_flags        Array(LowCardinality(String)),
    referrals         Array(LowCardinality(String)),
    is_void           Bool,
    local_day         Date,
    version           UInt256,
    stored_at         DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {engine:ReplacingMergeTree(version)}
PARTITION BY toYYYYMM(local_day)
ORDER BY visit_id
SETTINGS {dedup_window} = 1000;

{distributed:visits:cityHash64(visit_id)};

-- One current row per (municipality, indicator, window_days, as_of).
CREATE TABLE IF NOT EXISTS {db}.{local:indicator_values}{on_cluster}
(
    municipality  LowCardinality(String),
    indicator     LowCardinality(String),
    window_days   UInt8,
    as_of         Date,
    numerator     UInt64,
    denominator   Nullable(UInt64),
    value         Nullable(Float64),
    computed_at   DateTime64(3, 'UTC'),
    version       UInt64
)
ENGINE = {engine:ReplacingMergeTree(version)}
PARTITION BY toYYYYMM(as_of)
ORDER BY (municipality, indicator, window_days, as_of)
SETTINGS {dedup_window} = 1000;

{distributed:indicator_values:cityHash64(municipality, indicator, window_days, as_of)};

-- Alert transitions; `seq` numbers the transitions of one (municipality, indicator,
-- window), so a transition written twice is stored once.
CREATE TABLE IF NOT EXISTS {db}.{local:alerts}{on_cluster}
(
    municipality  LowCardinality(String),
    indicator     LowCardinality(String),
    window_days   UInt8,
    seq           UInt64,
    state         LowCardinality(String),
    value         Nullable(Float64),
    target        Float64,
    denominator   Nullable(UInt64),
    as_of         Date,
    emitted_at    DateTime64(3, 'UTC')
)
ENGINE = {engine:ReplacingMergeTree}
PARTITION BY toYYYYMM(as_of)
ORDER BY (municipality, indicator, window_days, seq)
SETTINGS {dedup_window} = 1000;

-- Sharded by the alert key, without `seq`: one alert's transitions stay together.
{distributed:alerts:cityHash64(municipality, indicator, window_days)};

-- The latest transition of each alert key, when it is `raised`. On a cluster it reads
-- the Distributed `alerts` on every node: each shard applies FINAL to its own rows.
CREATE VIEW IF NOT EXISTS {db}.active_alerts{on_cluster} AS
SELECT municipality, indicator, window_days, last_state AS state, value, target,
       denominator, as_of, emitted_at
FROM
(
    SELECT municipality, indicator, window_days,
           argMax(state, seq) AS last_state, argMax(value, seq) AS value,
           argMax(target, seq) AS target, argMax(denominator, seq) AS denominator,
           argMax(as_of, seq) AS as_of, argMax(emitted_at, seq) AS emitted_at
    FROM {db}.alerts FINAL
    GROUP BY municipality, indicator, window_days
)
WHERE last_state = 'raised';

-- Invalid input, with its original bytes. `source` names where it came from
-- (topic/partition/offset), so a dead letter written twice is stored once.
CREATE TABLE IF NOT EXISTS {db}.{local:dead_letters}{on_cluster}
(
    received_at  DateTime64(3, 'UTC'),
    reason       LowCardinality(String),
    field        String,
    detail       String,
    payload      String,
    source       String
)
ENGINE = {engine:ReplacingMergeTree}
PARTITION BY toYYYYMM(received_at)
ORDER BY source
SETTINGS {dedup_window} = 1000;

{distributed:dead_letters:cityHash64(source)};
