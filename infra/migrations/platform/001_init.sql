-- Platform: state of the platform itself. Later migrations add the bus log, sagas, outbox,
-- ETL runs and notifications.

CREATE TABLE audit_events (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  request_id text,
  actor      text NOT NULL,
  action     text NOT NULL,
  details    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_at_idx ON audit_events (at);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, at DESC);
