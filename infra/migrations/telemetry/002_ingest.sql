-- Device ingestion (edge/telemetry, workers/telemetry) and the ETL's reads through ClickHouse.
--
-- UTC sessions: ClickHouse's postgresql() table function pushes time-window filters down as
-- timestamps without a zone ('2026-03-09 10:00:00'), which PostgreSQL reads in the session's
-- TimeZone. Pinning the database to UTC makes those windows exact; the ETL checks it before each run.
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET timezone TO %L', current_database(), 'UTC');
END;
$$;

-- What a device uploaded under a batch id: a replay with the same content is answered from here,
-- a different content under a used id is a conflict. NULL for rows written by the data generator.
ALTER TABLE telemetry_batches
  ADD COLUMN content_sha256 text CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
  -- Event-time span of the batch: lets the ETL find uploads that arrived later than its window.
  ADD COLUMN min_ts timestamptz,
  ADD COLUMN max_ts timestamptz;
CREATE INDEX telemetry_batches_received_idx ON telemetry_batches (received_at);
