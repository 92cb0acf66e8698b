-- Per user, chip and day usage metrics, loaded by the ETL (CRM + telemetry). An ETL re-run for the
-- same window inserts rows with a higher _version; read with FINAL to see only the newest.
CREATE TABLE IF NOT EXISTS user_prosthesis_stats
(
    user_id         String,
    chip_id         String,
    day             Date,
    active_minutes  UInt32,
    actions         UInt32,
    errors          UInt32,
    error_rate      Float64,
    latency_p50_ms  Float64,
    latency_p95_ms  Float64,
    battery_min     UInt8,
    battery_avg     Float64,
    grip_force_avg  Float64,
    top_error_codes Array(String),
    _version        UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, chip_id, day);
