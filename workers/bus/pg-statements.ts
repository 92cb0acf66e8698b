/**
 * The statements of the PostgreSQL log (pg-log.ts runs them). Every one is a single statement, so it
 * is atomic on its own, runs the same on the bus's pool and inside a caller's transaction, and is
 * prepared once per connection.
 */

/**
 * Connection settings for the bus's own connections. Their statements are prepared and would use
 * custom plans forever: PostgreSQL prices a generic plan of an `unnest($n)` statement for 10 array
 * elements, above a custom plan's few, so it re-plans at every execution — measured here, half the
 * server CPU of a small fetch. Every statement here finds its rows by primary key, which a generic
 * plan does as well as a custom one.
 */
export const BUS_CONNECTION = { plan_cache_mode: 'force_generic_plan' } as const;

// Locks the touched partition rows in partition order (no deadlocks between batches), takes the next
// offsets, inserts, and wakes consumers; NOTIFY is delivered at commit, so a rollback wakes nobody.
// A consumer also commits its offset ($7…$10) in the same statement, atomically with its dead letters,
// fenced by $6: only on the session whose backend pid holds the partition's lock.
export const APPEND = `
WITH batch AS (
  SELECT * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS b(partition, key, value, headers, ord)
  WHERE $6::int IS NULL OR pg_backend_pid() = $6
), counts AS (
  SELECT partition, count(*) AS n FROM batch GROUP BY partition
), locked AS MATERIALIZED (
  SELECT p.partition, p.next_offset FROM bus_partitions p
  WHERE p.topic_id = $1 AND p.partition IN (SELECT partition FROM counts)
  ORDER BY p.partition FOR UPDATE
), bumped AS (
  UPDATE bus_partitions p SET next_offset = l.next_offset + c.n
  FROM locked l JOIN counts c USING (partition)
  WHERE p.topic_id = $1 AND p.partition = l.partition
  RETURNING p.partition, l.next_offset AS base
), inserted AS (
  INSERT INTO bus_messages (topic_id, partition, msg_offset, key, value, headers)
  SELECT $1, b.partition, m.base + row_number() OVER (PARTITION BY b.partition ORDER BY b.ord) - 1, b.key, b.value, b.headers::jsonb
  FROM batch b JOIN bumped m USING (partition)
  RETURNING 1
), committed AS (
  INSERT INTO bus_offsets (group_id, topic_id, partition, next_offset)
  SELECT $7, $8, $9, $10 WHERE $7::int IS NOT NULL AND pg_backend_pid() = $6
  ON CONFLICT (group_id, topic_id, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
  RETURNING 1
)
SELECT (SELECT count(*) FROM inserted)::int AS n, (SELECT count(*) FROM committed)::int AS committed,
       (SELECT count(*) FROM (SELECT pg_notify('bus', $1 || ':' || partition) FROM counts) x)::int AS woken`;

// Several partitions' fetches in one statement (pg-coalesce.ts merges them): `i` says which request
// a row answers, and each request's rows come in offset order, as the lateral subquery reads them.
// Epoch milliseconds instead of timestamptz: parsing a number beats parsing a date string per row.
export const FETCH = `SELECT r.i::int AS i, m.msg_offset, m.key, m.value, m.headers, (extract(epoch FROM m.created_at) * 1000)::float8 AS at
FROM unnest($1::int[], $2::int[], $3::bigint[], $4::int[]) WITH ORDINALITY AS r(topic_id, partition, from_offset, lim, i)
CROSS JOIN LATERAL (
  SELECT msg_offset, key, value, headers, created_at FROM bus_messages
  WHERE topic_id = r.topic_id AND partition = r.partition AND msg_offset >= r.from_offset
  ORDER BY msg_offset LIMIT r.lim
) m`;

// Inserts the group's starting point on first claim, so retention waits for it from then on.
export const POSITION = `WITH ins AS (
  INSERT INTO bus_offsets (group_id, topic_id, partition, next_offset)
  SELECT $1, $2, $3, CASE WHEN $4::boolean THEN start_offset ELSE next_offset END
  FROM bus_partitions WHERE topic_id = $2 AND partition = $3 AND pg_backend_pid() = $5
  ON CONFLICT DO NOTHING RETURNING next_offset)
SELECT next_offset FROM ins UNION ALL
SELECT next_offset FROM bus_offsets WHERE group_id = $1 AND topic_id = $2 AND partition = $3 AND pg_backend_pid() = $5`;

export const LAG = `SELECT t.name AS topic, p.partition, o.next_offset AS committed, p.start_offset, p.next_offset AS end_offset
FROM bus_topics t JOIN bus_partitions p ON p.topic_id = t.id
LEFT JOIN bus_groups g ON g.name = $1
LEFT JOIN bus_offsets o ON o.group_id = g.id AND o.topic_id = p.topic_id AND o.partition = p.partition
WHERE CASE WHEN $2::text[] IS NULL THEN EXISTS (SELECT 1 FROM bus_offsets x WHERE x.group_id = g.id AND x.topic_id = t.id)
           ELSE t.name = ANY($2::text[]) END
ORDER BY t.name, p.partition`;

// The common case of one partition (one key, or a batch of one): one row to lock, no sorting.
export const APPEND_ONE = `
WITH bumped AS (
  UPDATE bus_partitions SET next_offset = next_offset + cardinality($3::text[])
  WHERE topic_id = $1 AND partition = $2
  RETURNING next_offset - cardinality($3::text[]) AS base
), inserted AS (
  INSERT INTO bus_messages (topic_id, partition, msg_offset, key, value, headers)
  SELECT $1, $2, b.base + m.ord - 1, m.key, m.value, m.headers::jsonb
  FROM bumped b, unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS m(key, value, headers, ord)
  RETURNING 1
)
SELECT (SELECT count(*) FROM inserted)::int AS n, (SELECT count(*) FROM (SELECT pg_notify('bus', $1 || ':' || $2)) x)::int AS woken`;

// A consumer's commits without dead letters, of one group and any number of partitions, fenced like
// APPEND's; the rows returned say which committed (all of them, or none on the wrong session).
export const COMMIT = `INSERT INTO bus_offsets (group_id, topic_id, partition, next_offset)
SELECT $1, c.topic_id, c.partition, c.next_offset FROM unnest($2::int[], $3::int[], $4::bigint[]) AS c(topic_id, partition, next_offset)
WHERE pg_backend_pid() = $5
ON CONFLICT (group_id, topic_id, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
RETURNING topic_id, partition`;

// The first half of a COPY publish (pg-log.ts): locks the touched partitions in partition order,
// moves their log ends past the batch and returns where each part starts. The COPY that follows
// runs in the same transaction, so the offsets become visible, in order, at its commit.
export const RESERVE = `
WITH counts AS (
  SELECT * FROM unnest($2::int[], $3::int[]) AS c(partition, n)
), locked AS MATERIALIZED (
  SELECT p.partition, p.next_offset FROM bus_partitions p
  WHERE p.topic_id = $1 AND p.partition IN (SELECT partition FROM counts)
  ORDER BY p.partition FOR UPDATE
)
UPDATE bus_partitions p SET next_offset = l.next_offset + c.n
FROM locked l JOIN counts c USING (partition)
WHERE p.topic_id = $1 AND p.partition = l.partition
RETURNING p.partition, l.next_offset AS base`;

// The last statement of a COPY publish: NOTIFY (delivered at commit) and, queued behind the COPY on
// the same connection, the one place a failed COPY shows (the transaction is aborted).
export const WAKE = `SELECT count(pg_notify('bus', $1 || ':' || p))::int AS woken FROM unnest($2::int[]) AS p`;
