-- The embedded event bus: a durable, partitioned log with consumer-group offsets (the PostgreSQL
-- stand-in for Kafka, see workers/bus/postgres-bus.ts), the Kafka adapter's transactional outbox,
-- and the processed-message table idempotent handlers dedupe with.

CREATE TABLE bus_topics (
  id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._-]{1,249}$'),
  -- Fixed at creation: a key's partition is hash(key) mod partitions, so changing it reorders keys.
  partitions   integer NOT NULL CHECK (partitions BETWEEN 1 AND 4096),
  -- Hard age limit, like Kafka's retention.ms; NULL keeps messages until every group has passed them.
  retention_ms bigint CHECK (retention_ms > 0),
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per partition. `next_offset` is the log end: publishers lock the row while they append,
-- so offsets become visible in order, without gaps, and a rolled-back publish leaves no trace.
-- `start_offset` is the first offset retention kept.
CREATE TABLE bus_partitions (
  topic_id     integer NOT NULL REFERENCES bus_topics (id) ON DELETE CASCADE,
  partition    integer NOT NULL,
  next_offset  bigint NOT NULL DEFAULT 0,
  start_offset bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (topic_id, partition)
) WITH (fillfactor = 50); -- room for HOT updates: every publish bumps next_offset

CREATE TABLE bus_messages (
  topic_id   integer NOT NULL,
  partition  integer NOT NULL,
  msg_offset bigint NOT NULL,
  key        text NOT NULL,
  -- The serialised value (JSON text, see shared/bus/codec.ts), stored verbatim so a value that
  -- fails its schema still reaches the dead-letter topic byte for byte.
  value      text NOT NULL,
  headers    jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic_id, partition, msg_offset)
);

CREATE TABLE bus_groups (
  id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name       text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- The next offset each group will read, per partition; written only after its handler succeeded.
CREATE TABLE bus_offsets (
  group_id    integer NOT NULL REFERENCES bus_groups (id) ON DELETE CASCADE,
  topic_id    integer NOT NULL REFERENCES bus_topics (id) ON DELETE CASCADE,
  partition   integer NOT NULL,
  next_offset bigint NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, topic_id, partition)
) WITH (fillfactor = 50);

-- Lag per group and partition; a group that never committed on a partition counts from the log start.
CREATE VIEW bus_lag AS
SELECT g.name AS group_name, t.name AS topic, p.partition,
       o.next_offset AS committed_offset, p.next_offset AS end_offset,
       p.next_offset - COALESCE(o.next_offset, p.start_offset) AS lag,
       o.updated_at AS committed_at
FROM bus_offsets o
JOIN bus_groups g ON g.id = o.group_id
JOIN bus_topics t ON t.id = o.topic_id
JOIN bus_partitions p ON p.topic_id = o.topic_id AND p.partition = o.partition;

-- Idempotent handlers record what they processed, in the same transaction as their effects.
CREATE TABLE bus_processed (
  consumer     text NOT NULL,
  message_id   text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, message_id)
);
CREATE INDEX bus_processed_at_idx ON bus_processed (processed_at);

-- Kafka adapter only: publishes made inside a caller's transaction wait here until the relay has
-- handed them to Kafka, so a rolled-back transaction publishes nothing.
CREATE TABLE bus_outbox (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic      text NOT NULL,
  key        text NOT NULL,
  value      text NOT NULL,
  headers    jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
