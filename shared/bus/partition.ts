/**
 * Key → partition, the same function for every adapter: Kafka's own default (murmur2 over the key's
 * UTF-8 bytes, sign bit cleared, modulo the partition count), so Java and kafkajs producers that
 * key by the same string land on the same partition as we do.
 */
const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const encoder = new TextEncoder();

/** Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), as a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const tail = length & ~3;
  for (let i = 0; i < tail; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  switch (length & 3) {
    case 3: h ^= data[tail + 2]! << 16; // falls through
    case 2: h ^= data[tail + 1]! << 8; // falls through
    case 1: h = Math.imul(h ^ data[tail]!, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition (0 … partitions−1) a message with `key` belongs to. */
export function partitionFor(key: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`partitions must be a positive integer, got ${partitions}`);
  return (murmur2(encoder.encode(key)) & 0x7fffffff) % partitions;
}
