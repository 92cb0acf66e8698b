-- ETL (workers/etl): per user, chip and hour, the metrics of user_prosthesis_stats plus the states
-- days are merged from (so a day is recomputed from its hours without reading PostgreSQL again).
-- Rows are replaced per (user, chip, hour) by a newer _version (the ETL run id); read with FINAL.
CREATE TABLE IF NOT EXISTS user_prosthesis_stats_hourly
(
    user_id         String,
    chip_id         String,
    hour            DateTime('UTC'),
    active_minutes  UInt32,
    actions         UInt32,
    errors          UInt32,
    error_rate      Float64,
    latency_p50_ms  Nullable(Float64),
    latency_p95_ms  Nullable(Float64),
    battery_min     Nullable(UInt8),
    battery_avg     Nullable(Float64),
    grip_force_avg  Nullable(Float64),
    top_error_codes Array(String),
    -- Mergeable parts: every reading counted, exact latency quantile state, sums in integers so a
    -- day merged from its hours is the same whatever order the hours are read in.
    events          UInt32,
    latency_n       UInt32,
    latency_state   AggregateFunction(quantilesExactInclusive(0.5, 0.95), UInt32),
    battery_sum     UInt64,
    battery_n       UInt32,
    grip_sum_mn     Int64,
    grip_n          UInt32,
    error_counts    Map(String, UInt64),
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(hour)
ORDER BY (toDate(hour), user_id, chip_id, hour);

-- "No reading" is NULL, not 0: a leg has no grip force, a day without actions has no latency.
ALTER TABLE user_prosthesis_stats MODIFY COLUMN latency_p50_ms Nullable(Float64);
ALTER TABLE user_prosthesis_stats MODIFY COLUMN latency_p95_ms Nullable(Float64);
ALTER TABLE user_prosthesis_stats MODIFY COLUMN battery_min Nullable(UInt8);
ALTER TABLE user_prosthesis_stats MODIFY COLUMN battery_avg Nullable(Float64);
ALTER TABLE user_prosthesis_stats MODIFY COLUMN grip_force_avg Nullable(Float64);
