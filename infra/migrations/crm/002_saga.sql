-- The order saga's participants that act on the CRM (profile: balances, deals: orders) keep their
-- bookkeeping here, beside their effects, so one CRM transaction holds both: a redelivered command
-- finds its id in bus_processed and changes nothing twice. (The platform database has its own
-- bus_processed for consumers whose effects live there; the two databases share no transaction.)
-- These bookkeeping tables are internal: CDC has no reason to replicate them.

-- Orders registered through the API run a saga (`order-<id>`); imported or seeded orders have none.
ALTER TABLE orders ADD COLUMN saga_id text UNIQUE;
-- Free text an operator may edit while the saga runs (orders.update, optimistic locking on version).
ALTER TABLE orders ADD COLUMN note text CHECK (length(note) <= 2000);

-- One row per order: funds are held at most once per order, and a release leaves a tombstone so a
-- late approval can never hold them again.
CREATE TABLE order_reservations (
  order_id    bigint PRIMARY KEY REFERENCES orders (id),
  customer_id bigint NOT NULL REFERENCES customers (id),
  amount      numeric(12, 2) NOT NULL CHECK (amount >= 0),
  status      text NOT NULL CHECK (status IN ('held', 'released')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_reservations_customer_idx ON order_reservations (customer_id) WHERE status = 'held';
CREATE TRIGGER order_reservations_updated_at BEFORE UPDATE ON order_reservations
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Same shape as the platform's table, so workers/bus/dedupe.ts `firstDeliveries` works on either.
CREATE TABLE bus_processed (
  consumer     text NOT NULL,
  message_id   text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, message_id)
);
CREATE INDEX bus_processed_at_idx ON bus_processed (processed_at);

-- The reply a participant gave to a command, written with its effects. Replies are published after
-- the CRM commit (another database), so a redelivered command re-publishes the stored reply — same
-- message id, which the orchestrator deduplicates — instead of deciding again.
CREATE TABLE saga_replies (
  command_id text PRIMARY KEY,
  saga_id    text NOT NULL,
  value      jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX saga_replies_created_idx ON saga_replies (created_at);
