/**
 * Signing keys and cookie keys of the development identity provider, generated on first start and
 * kept owner-only in its data directory, so tokens and sessions survive a restart of the stack.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

export interface IdpKeys { jwks: { keys: JWK[] }; cookieKeys: string[] }

export async function loadOrCreateKeys(dataDir: string): Promise<IdpKeys> {
  const file = join(dataDir, 'keys.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as IdpKeys;
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };
  const keys: IdpKeys = { jwks: { keys: [jwk] }, cookieKeys: [randomBytes(32).toString('base64url')] };
  await writeFile(file, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}
