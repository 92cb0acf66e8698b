/**
 * Prints a demo user's current one-time code (and the otpauth:// URI to add the account to an
 * authenticator app) from the development identity provider's data directory. Development only:
 * the secrets never leave this machine's files, and the provider never serves them over HTTP.
 *
 *   node --import tsx infra/idp/totp-cli.ts user1 [--data-dir ./data/idp] [--watch]
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Secret, TOTP } from 'otpauth';
import { openTotpStore, TOTP_ISSUER } from './totp-store.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const HELP = `Usage: node --import tsx infra/idp/totp-cli.ts <username> [--data-dir DIR] [--watch]

Shows the TOTP code of a demo user enrolled in the development identity provider.
  --data-dir DIR   the IdP's data directory (default: ./data/idp, or $BIONIC_DATA_DIR/idp)
  --watch          keep printing a fresh code every 30 s (Ctrl-C stops)`;

const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'data-dir': { type: 'string' }, watch: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
const username = positionals[0];
if (values.help || !username) {
  console.log(HELP);
  process.exit(username || values.help ? 0 : 2);
}
const dataDir = resolve(values['data-dir'] ?? join(process.env.BIONIC_DATA_DIR ?? join(ROOT, 'data'), 'idp'));
if (!existsSync(join(dataDir, 'totp.json'))) {
  console.error(`No TOTP store in ${dataDir} — start the stack once (npm start) or pass --data-dir.`);
  process.exit(1);
}
const secret = openTotpStore(dataDir).secret(username);
if (!secret) {
  console.error(`${username} has not enrolled yet: sign in once and scan the QR code the sign-in page shows.`);
  process.exit(1);
}
const totp = new TOTP({ issuer: TOTP_ISSUER, label: username, secret: Secret.fromBase32(secret) });
console.log(`otpauth URI: ${totp.toString()}`);
// A code not used yet (the provider accepts each time step once); the file is re-read each time.
const show = () => {
  const { code, validFromMs } = openTotpStore(dataDir).nextCode(username);
  const wait = Math.ceil((validFromMs - Date.now()) / 1000);
  console.log(`${username}: ${code}${wait > 0 ? `  (usable in ${wait} s)` : ''}`);
};
show();
if (values.watch) {
  // Print each new code as its time step begins.
  setTimeout(() => { show(); setInterval(show, 30_000); }, TOTP.remaining() + 50);
}
