/**
 * shared/, router/ and edge/ run on Deno and edge runtimes: Web APIs only.
 * Node entry points (edge/main.node.ts) and tests are the only exceptions.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findNodeOnly } from '../support/web-only.ts';

const ROOT = join(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.tsx?$/.test(name) && !/\.test\.tsx?$/.test(name) && name !== 'main.node.ts' ? [p] : [];
  });
}

describe('web-only code', () => {
  it('the detector catches node:* imports, Buffer and process', () => {
    expect(findNodeOnly(`import fs from 'node:fs';`)).toEqual(['node:* import']);
    expect(findNodeOnly(`const x = require("node:path")`)).toEqual(['node:* import']);
    expect(findNodeOnly(`const b = Buffer.from('x')`)).toEqual(['Buffer']);
    expect(findNodeOnly(`const v = process.env.X`)).toEqual(['process']);
    expect(findNodeOnly(`// says process.env in a comment\nconst ok = 1;`)).toEqual([]);
    expect(findNodeOnly(`const s = "processing"; const t = subprocess;`)).toEqual([]);
  });

  for (const dir of ['shared', 'router', 'edge']) {
    it(`${dir}/ uses no node:* imports, Buffer or process`, () => {
      const offenders = sources(join(ROOT, dir))
        .map((file) => ({ file: relative(ROOT, file), found: findNodeOnly(readFileSync(file, 'utf8')) }))
        .filter((o) => o.found.length > 0);
      expect(offenders).toEqual([]);
    });
  }
});
