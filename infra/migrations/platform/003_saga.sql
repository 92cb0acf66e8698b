-- The order saga (workers/saga): instances with their accumulated context, every event each saga
-- saw (applied or ignored) and the commands it sent, and the notifications users receive.

CREATE TABLE saga_instances (
  id          text PRIMARY KEY,
  kind        text NOT NULL DEFAULT 'MANUAL_CREATE_ORDER',
  state       text NOT NULL CHECK (state IN ('DRAFT', 'APPROVED', 'REJECTED', 'NOTIFICATION', 'FINISHED')),
  context     jsonb NOT NULL,
  -- Optimistic locking: every change is UPDATE … WHERE id = $1 AND version = $2.
  version     integer NOT NULL DEFAULT 1 CHECK (version >= 1),
  -- The command whose reply moves the saga on; a reply to anything else does not fit.
  awaiting    text,
  -- When the current state times out (NULL: it does not).
  deadline_at timestamptz,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz
);
CREATE INDEX saga_instances_deadline_idx ON saga_instances (deadline_at) WHERE deadline_at IS NOT NULL;
CREATE INDEX saga_instances_state_idx ON saga_instances (state) WHERE state <> 'FINISHED';

-- No foreign key: an event for a saga that does not exist is recorded too.
CREATE TABLE saga_history (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  saga_id     text NOT NULL,
  at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  event_id    text NOT NULL,
  event_type  text NOT NULL,
  causation_id text,
  from_state  text,
  to_state    text,
  outcome     text NOT NULL CHECK (outcome IN ('applied', 'ignored')),
  -- Why an ignored event did not fit.
  reason      text,
  -- The saga's version after this entry (unchanged when ignored).
  version     integer,
  -- Commands sent with this transition: [{ messageId, type, topic }].
  commands    jsonb NOT NULL DEFAULT '[]'::jsonb,
  payload     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX saga_history_saga_idx ON saga_history (saga_id, id);

CREATE TABLE notifications (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- The customer's login name (the identity provider's preferred_username).
  recipient         text NOT NULL,
  kind              text NOT NULL,
  title             text NOT NULL,
  body              text NOT NULL,
  data              jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- The NOTIFY command it came from: one notification per command, however often it is delivered.
  source_message_id text NOT NULL UNIQUE,
  created_at        timestamptz NOT NULL DEFAULT now(),
  read_at           timestamptz
);
CREATE INDEX notifications_recipient_idx ON notifications (recipient, id DESC);
