import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { murmur2, partitionFor } from './partition.ts';

// kafkajs's own implementation (used by its DefaultPartitioner), as the reference.
const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: string | Buffer) => number;
const { Partitioners } = require('kafkajs') as typeof import('kafkajs');

const bytes = (s: string) => new TextEncoder().encode(s);

describe('partitionFor', () => {
  it('matches the Java client\'s murmur2 test vectors', () => {
    // org.apache.kafka.common.utils.UtilsTest#testMurmur2
    expect(murmur2(bytes('21'))).toBe(-973932308);
    expect(murmur2(bytes('foobar'))).toBe(-790332482);
    expect(murmur2(bytes('a-little-bit-long-string'))).toBe(-985981536);
    expect(murmur2(bytes('a-little-bit-longer-string'))).toBe(-1486304829);
    expect(murmur2(bytes('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8'))).toBe(-58897971);
    expect(murmur2(bytes('abc'))).toBe(479470107);
  });

  it('agrees with kafkajs for keys of every length and script', () => {
    const keys = ['', 'a', 'ab', 'abc', 'abcd', 'order-42', '42', 'Привет', '日本語', '🚀🚀', 'ÿþ\u0000x'];
    for (let i = 0; i < 300; i++) keys.push(`key-${i}-${'x'.repeat(i % 13)}`);
    for (const key of keys) expect(murmur2(bytes(key)), key).toBe(kafkajsMurmur2(Buffer.from(key)));
  });

  it('chooses the partition kafkajs\'s default partitioner chooses', () => {
    const partitioner = Partitioners.DefaultPartitioner();
    for (const n of [1, 3, 8, 12, 100]) {
      const partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
      for (let i = 0; i < 200; i++) {
        const key = `customer-${i * 7919}`;
        expect(partitionFor(key, n)).toBe(partitioner({ topic: 't', partitionMetadata, message: { key, value: null } }));
      }
    }
  });

  it('spreads keys over every partition and rejects a bad count', () => {
    const seen = new Set(Array.from({ length: 1000 }, (_, i) => partitionFor(`k${i}`, 16)));
    expect(seen.size).toBe(16);
    expect(() => partitionFor('k', 0)).toThrow(RangeError);
    expect(() => partitionFor('k', 1.5)).toThrow(RangeError);
  });
});
