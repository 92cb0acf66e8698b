/** Consumer-group lag on Kafka: committed offsets (admin API) against each partition's high watermark. */
import type { Admin } from 'kafkajs';
import type { PartitionLag } from '../../shared/ports/bus.ts';

/** Lag of `group` per partition of `topics` (default: every topic it committed on). */
export async function kafkaLag(admin: Admin, group: string, topics?: readonly string[]): Promise<PartitionLag[]> {
  const committed = await admin.fetchOffsets({ groupId: group, topics: topics ? [...topics] : undefined });
  const out: PartitionLag[] = [];
  for (const { topic, partitions } of committed) {
    const ends = await admin.fetchTopicOffsets(topic);
    for (const end of ends) {
      const c = partitions.find((p) => p.partition === end.partition)?.offset;
      // Kafka reports "no commit" as -1; such a group starts at the oldest retained message.
      const has = c !== undefined && c !== '-1';
      out.push({
        group, topic, partition: end.partition, committedOffset: has ? c : null, endOffset: end.high,
        lag: Number(BigInt(end.high) - BigInt(has ? c : end.low)),
      });
    }
  }
  return out.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}
