-- ETL bookkeeping (workers/etl): the watermark per job and the history of every run.
-- One run at a time is enforced by a session advisory lock (hashtext('bionicpro:etl:<job>')),
-- not by these tables; a run found 'running' by the lock's next holder was abandoned.

CREATE TABLE etl_state (
  job         text PRIMARY KEY,
  -- Event time up to which telemetry has been loaded; the next run starts this much earlier
  -- minus the late-data allowance. NULL until the first run that found data.
  watermark   timestamptz,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE etl_runs (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job              text NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('scheduled', 'manual', 'retry', 'backfill')),
  -- Who asked: 'cron', 'cli', or the user id of an etl.run caller.
  triggered_by     text NOT NULL,
  attempt          integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
  status           text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
  -- Event-time window read from telemetry, [window_from, window_to).
  window_from      timestamptz,
  window_to        timestamptz,
  watermark_before timestamptz,
  watermark_after  timestamptz,
  started_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz,
  duration_ms      integer,
  rows_read        bigint,
  rows_written     bigint,
  affected_users   integer,
  error            text,
  details          jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX etl_runs_job_id_idx ON etl_runs (job, id DESC);
CREATE INDEX etl_runs_running_idx ON etl_runs (job) WHERE status = 'running';
