-- Telemetry: high-volume device events, range-partitioned by month (UTC) with a default partition
-- so an event outside every month still lands somewhere. Call telemetry_ensure_partitions() for the
-- months you are about to load; it also moves stray rows out of the default partition.
--
-- No primary key on events on purpose: it would have to include ts, costs an index on the hottest
-- write path, and duplicates are prevented one level up by telemetry_batches (one row per upload).

CREATE TABLE telemetry_events (
  chip_id      text NOT NULL,
  ts           timestamptz NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('action', 'error', 'status')),
  action       text,
  response_ms  integer CHECK (response_ms >= 0),
  error_code   text,
  battery_pct  smallint CHECK (battery_pct BETWEEN 0 AND 100),
  -- NULL where the device has no grip (legs) and on status events.
  grip_force_n real CHECK (grip_force_n >= 0),
  batch_id     uuid,
  seq          integer CHECK (seq >= 0),
  CONSTRAINT telemetry_events_error_code_check CHECK ((kind = 'error') = (error_code IS NOT NULL))
) PARTITION BY RANGE (ts);

CREATE TABLE telemetry_events_default PARTITION OF telemetry_events DEFAULT;

-- Per-chip time ranges (reports, ETL joins); BRIN for cheap time-window scans (ETL watermarks).
CREATE INDEX telemetry_events_chip_ts_idx ON telemetry_events (chip_id, ts);
CREATE INDEX telemetry_events_ts_brin ON telemetry_events USING brin (ts);

CREATE FUNCTION telemetry_ensure_partitions(p_from date, p_to date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  m       date := date_trunc('month', p_from)::date;
  lo      timestamptz;
  hi      timestamptz;
  part    text;
  created integer := 0;
BEGIN
  IF p_from IS NULL OR p_to IS NULL OR p_to < p_from THEN
    RAISE EXCEPTION 'telemetry_ensure_partitions: invalid range % .. %', p_from, p_to;
  END IF;
  -- Two callers creating the same month would race on CREATE/ATTACH: serialise them.
  PERFORM pg_advisory_xact_lock(hashtext('telemetry_ensure_partitions'));
  WHILE m <= p_to LOOP
    part := format('telemetry_events_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
    -- Bounds are UTC months whatever the session's TimeZone is.
    lo := m::timestamp AT TIME ZONE 'UTC';
    hi := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    IF to_regclass(part) IS NULL THEN
      EXECUTE format('CREATE TABLE %I (LIKE telemetry_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
      -- ATTACH fails while the default partition holds rows of this month: move them first.
      EXECUTE format(
        'WITH moved AS (DELETE FROM telemetry_events_default WHERE ts >= $1 AND ts < $2 RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
      EXECUTE format('ALTER TABLE telemetry_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
      created := created + 1;
    END IF;
    m := (m + interval '1 month')::date;
  END LOOP;
  RETURN created;
END;
$$;

-- One row per device upload: ingestion inserts here first (ON CONFLICT DO NOTHING) and skips the
-- events of a batch it has already stored.
CREATE TABLE telemetry_batches (
  batch_id    uuid PRIMARY KEY,
  chip_id     text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  events      integer NOT NULL CHECK (events >= 0)
);
CREATE INDEX telemetry_batches_chip_idx ON telemetry_batches (chip_id, received_at);
