/**
 * The behaviour every ObjectStore adapter must show. Each adapter's test file calls
 * {@link objectStoreContract} with a setup that yields a store on an empty or shared bucket;
 * keys are namespaced per run, so a bucket may be reused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../shared/ports/object-store.ts';

export interface ObjectStoreFixture {
  store: ObjectStore;
  teardown(): Promise<void>;
}

const HOOK_TIMEOUT = 60_000;
const TEST_TIMEOUT = 30_000;

/** Number of keys the listing test writes; setups should pick a smaller page size so listing spans pages. */
export const LIST_KEY_COUNT = 25;

/**
 * Registers the contract suite for one adapter.
 * @param setup creates the store under test; for the listing test to cross page boundaries, it
 *   should configure a page size below {@link LIST_KEY_COUNT} where the adapter allows one.
 */
export function objectStoreContract(name: string, setup: () => Promise<ObjectStoreFixture>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let fx: ObjectStoreFixture | undefined;
    const store = () => {
      if (!fx) throw new Error('setup did not complete');
      return fx.store;
    };
    const run = `contract-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const k = (suffix: string) => `${run}/${suffix}`;
    const text = 'Отчёт за январь — grip 12.5 N ✓ 🦾 "quoted" <tag> &amp;';
    const binary = Uint8Array.from({ length: 256 }, (_, i) => i);

    beforeAll(async () => { fx = await setup(); }, HOOK_TIMEOUT);
    afterAll(async () => { await fx?.teardown(); }, HOOK_TIMEOUT);

    it('ping succeeds against a live store', async () => {
      await expect(store().ping()).resolves.toBeUndefined();
    });

    it('head reports size, etag and content type after put, and null for a missing key', async () => {
      const { etag } = await store().put(k('head.json'), text, { contentType: 'application/json' });
      const info = await store().head(k('head.json'));
      expect(info).not.toBeNull();
      expect(info!.key).toBe(k('head.json'));
      expect(info!.size).toBe(new TextEncoder().encode(text).byteLength);
      expect(info!.etag).toBe(etag);
      expect(info!.etag).toMatch(/^[^"]+$/);
      expect(info!.contentType).toBe('application/json');
      expect(info!.lastModified).toBeInstanceOf(Date);
      expect(Math.abs(info!.lastModified.getTime() - Date.now())).toBeLessThan(10 * 60_000);
      expect(await store().head(k('no-such-key'))).toBeNull();
    }, TEST_TIMEOUT);

    it('get returns the exact bytes of UTF-8 text and of every byte value, and null for a missing key', async () => {
      await store().put(k('text.txt'), text, { contentType: 'text/plain; charset=utf-8' });
      await store().put(k('binary.bin'), binary, { contentType: 'application/octet-stream' });

      const gotText = await store().get(k('text.txt'));
      expect(gotText).not.toBeNull();
      expect(new TextDecoder('utf-8', { fatal: true }).decode(gotText!.body)).toBe(text);
      expect(gotText!.size).toBe(gotText!.body.byteLength);
      expect(gotText!.contentType).toBe('text/plain; charset=utf-8');

      const gotBinary = await store().get(k('binary.bin'));
      expect(gotBinary).not.toBeNull();
      expect(gotBinary!.body).toBeInstanceOf(Uint8Array);
      expect(Array.from(gotBinary!.body)).toEqual(Array.from(binary));
      expect(gotBinary!.etag).toBe((await store().head(k('binary.bin')))!.etag);

      expect(await store().get(k('no-such-key'))).toBeNull();
    }, TEST_TIMEOUT);

    it('put replaces an existing object', async () => {
      await store().put(k('replace.txt'), 'first version');
      await store().put(k('replace.txt'), 'second');
      const got = await store().get(k('replace.txt'));
      expect(new TextDecoder().decode(got!.body)).toBe('second');
      expect(got!.size).toBe(6);
    }, TEST_TIMEOUT);

    it('equal content gets equal etags and different content different ones', async () => {
      const a = await store().put(k('etag-a'), binary);
      const b = await store().put(k('etag-b'), binary.slice());
      const c = await store().put(k('etag-c'), binary.slice(1));
      expect(a.etag).toBe(b.etag);
      expect(c.etag).not.toBe(a.etag);
    }, TEST_TIMEOUT);

    it('keys with spaces and non-ASCII characters round-trip', async () => {
      const key = k('reports/пользователь 1/v2/2024-01 (draft).json');
      await store().put(key, '{"ok":true}', { contentType: 'application/json' });
      expect(new TextDecoder().decode((await store().get(key))!.body)).toBe('{"ok":true}');
      const listed = [];
      for await (const o of store().list(k('reports/'))) listed.push(o.key);
      expect(listed).toEqual([key]);
    }, TEST_TIMEOUT);

    it('delete removes an object, and deleting a missing key does not throw', async () => {
      await store().put(k('gone.txt'), 'bye');
      expect(await store().get(k('gone.txt'))).not.toBeNull();
      await store().delete(k('gone.txt'));
      expect(await store().get(k('gone.txt'))).toBeNull();
      expect(await store().head(k('gone.txt'))).toBeNull();
      await expect(store().delete(k('gone.txt'))).resolves.toBeUndefined();
      await expect(store().delete(k('never-existed.txt'))).resolves.toBeUndefined();
    }, TEST_TIMEOUT);

    it(`list returns every key under a prefix exactly once, across pages, and nothing outside it`, async () => {
      const expected = Array.from({ length: LIST_KEY_COUNT }, (_, i) => k(`list/item-${String(i).padStart(3, '0')}.json`));
      // Neighbours that share the prefix's leading characters but lie outside it.
      const outside = [k('list-other/item-000.json'), k('lis'), k('listing.json'), k('a/list/item.json')];
      for (const key of [...expected, ...outside]) await store().put(key, `{"key":${JSON.stringify(key)}}`);

      const seen: string[] = [];
      for await (const o of store().list(k('list/'))) {
        seen.push(o.key);
        expect(o.size).toBe(new TextEncoder().encode(`{"key":${JSON.stringify(o.key)}}`).byteLength);
        expect(o.etag).toMatch(/^[^"]+$/);
        expect(o.lastModified).toBeInstanceOf(Date);
      }
      expect(seen).toHaveLength(LIST_KEY_COUNT);
      expect(new Set(seen).size).toBe(LIST_KEY_COUNT);
      expect([...seen].sort()).toEqual(expected);

      const none = [];
      for await (const o of store().list(k('nothing-here/'))) none.push(o);
      expect(none).toEqual([]);
    }, TEST_TIMEOUT);

    it('a signed URL downloads the object with plain fetch', async () => {
      await store().put(k('signed.bin'), binary, { contentType: 'application/octet-stream' });
      const url = await store().signedUrl(k('signed.bin'), 60);
      expect(url).toMatch(/^https?:\/\//);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(Array.from(new Uint8Array(await res.arrayBuffer()))).toEqual(Array.from(binary));
    }, TEST_TIMEOUT);
  });
}
