/**
 * Retention for the PostgreSQL log. Per partition, messages are deleted below the lowest offset any
 * group still needs, once they are older than a minimum age (so a group that just fell behind, or a
 * debugging session, still finds them); topics with `retention_ms` also lose anything older than that,
 * read or not, as Kafka does. Runs in one transaction under an advisory lock: one cleaner at a time.
 */
import type postgres from 'postgres';

export interface RetentionResult { deleted: number; partitions: number }

// Offsets grow with time, so the first message younger than a cutoff bounds the deletable prefix;
// the primary-key scan stops there instead of reading the whole partition.
const BOUNDARY = `SELECT COALESCE((SELECT msg_offset FROM bus_messages
  WHERE topic_id = $1 AND partition = $2 AND msg_offset >= $3 AND created_at >= now() - make_interval(secs => $4::float8 / 1000)
  ORDER BY msg_offset LIMIT 1), $5) AS boundary`;

/** Deletes what retention allows; returns how much. */
export async function runRetention(sql: postgres.Sql, opts: { minAgeMs: number }): Promise<RetentionResult> {
  return sql.begin(async (tx) => {
    const [lock] = await tx`SELECT pg_try_advisory_xact_lock(hashtext('bionicpro:bus-retention')) AS ok`;
    if (!lock?.ok) return { deleted: 0, partitions: 0 };
    const parts = await tx`
      SELECT p.topic_id, p.partition, p.start_offset, p.next_offset, t.retention_ms,
             (SELECT min(o.next_offset) FROM bus_offsets o WHERE o.topic_id = p.topic_id AND o.partition = p.partition) AS floor
      FROM bus_partitions p JOIN bus_topics t ON t.id = p.topic_id
      WHERE p.next_offset > p.start_offset`;
    let deleted = 0;
    let touched = 0;
    for (const p of parts) {
      const start = Number(p.start_offset);
      const end = Number(p.next_offset);
      const boundary = async (ageMs: number) =>
        Number((await tx.unsafe(BOUNDARY, [p.topic_id, p.partition, start, ageMs, end], { prepare: true }))[0]!.boundary);
      let upTo = start;
      if (p.floor !== null && Number(p.floor) > start) upTo = Math.min(Number(p.floor), await boundary(opts.minAgeMs));
      if (p.retention_ms !== null) upTo = Math.max(upTo, await boundary(Number(p.retention_ms)));
      if (upTo <= start) continue;
      const gone = await tx`DELETE FROM bus_messages
        WHERE topic_id = ${p.topic_id} AND partition = ${p.partition} AND msg_offset < ${upTo}`;
      await tx`UPDATE bus_partitions SET start_offset = GREATEST(start_offset, ${upTo})
        WHERE topic_id = ${p.topic_id} AND partition = ${p.partition}`;
      deleted += gone.count;
      touched++;
    }
    return { deleted, partitions: touched };
  });
}
