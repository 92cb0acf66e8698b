-- Data residency: the order notifications of a saga with a region (recipient's username, the order's
-- outcome, model and price) are personal data, so the notification participant stores them in the
-- customer's region's CRM, in the same transaction as its dedupe record and stored reply
-- (002_saga.sql). Same table as the platform's (platform/003_saga.sql), which keeps the
-- notifications of sagas without a region. Internal to the saga: CDC has no reason to replicate it.

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
