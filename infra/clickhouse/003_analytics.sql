-- Cross-region analytics on pseudonymised identifiers (workers/analytics). Applied to every ClickHouse
-- database like the other files; each table is used in one kind of database only (the other copy stays empty).

-- In each REGION's database: which pseudonym a subject has under the current key (HMAC-SHA256 of
-- "<region>:<user_id>", computed by the workers, never by ClickHouse). Written by each ETL run for the
-- users it loaded; the newest row per user wins (read with FINAL). Never leaves the region.
CREATE TABLE IF NOT EXISTS user_pseudonyms
(
    user_id   String,
    pseudo_id String,
    _version  UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY user_id;

-- In the CENTRAL database (CLICKHOUSE_DATABASE): per pseudonym, region, UTC day and prosthesis model
-- kind, the day's statistics summed over that person's devices of that kind. No subject, username,
-- chip id or name: only the pseudonym identifies a row. A re-run of the same days writes a higher
-- _version (its ETL run id) of the same key; read with FINAL.
CREATE TABLE IF NOT EXISTS prosthesis_stats_pseudo
(
    pseudo_id      String,
    region         LowCardinality(String),
    day            Date,
    model_kind     LowCardinality(String),
    devices        UInt16,
    active_minutes UInt32,
    actions        UInt32,
    errors         UInt32,
    error_rate     Float64,
    latency_p50_ms Nullable(Float64),
    latency_p95_ms Nullable(Float64),
    battery_min    Nullable(UInt8),
    battery_avg    Nullable(Float64),
    grip_force_avg Nullable(Float64),
    _version       UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(day)
ORDER BY (region, day, pseudo_id, model_kind);
