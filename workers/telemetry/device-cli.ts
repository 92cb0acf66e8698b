/**
 * `node --import tsx workers/telemetry/device-cli.ts <command>`: provisioning and operating device
 * keys. A device's key is derived from the master key ring (TELEMETRY_DEVICE_KEYS) and its chip id,
 * so provisioning stores nothing: the factory flashes the printed key and key id into the device.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { revokedKey } from '../../edge/telemetry/accept.ts';
import { REGION_ID } from '../../shared/regions/config.ts';
import { telemetryEnvSchema } from '../../shared/telemetry/config.ts';
import { deriveDeviceKey, isValidChipId, KEY_ID_HEADER, SIGNATURE_HEADER, signBody } from '../../shared/telemetry/device-auth.ts';

const HELP = `Usage: node --import tsx workers/telemetry/device-cli.ts <command> [options]

Commands:
  key <chipId> [--kid K] [--region R]
                                print the device key (base64url) and key id to provision into the
                                device (default: the first, current key of TELEMETRY_DEVICE_KEYS);
                                --region binds the key to the owner's region (data residency): the
                                device then posts to /telemetry/v1/regions/R/devices/<chipId>/batches
  sign <chipId> [FILE] [--kid K] [--region R]
                                print the headers a device sends for the body in FILE (or stdin),
                                e.g. to try the endpoint with curl
  revoke <chipId> [--reason R]  refuse the device's uploads from now on (KV; needs
                                UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN)
  unrevoke <chipId>             accept its uploads again

Environment: TELEMETRY_DEVICE_KEYS (kid:base64key,…); for revoke/unrevoke also the KV variables.
Exit codes: 0 done, 1 failed, 2 bad usage.`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { kid: { type: 'string' }, region: { type: 'string' }, reason: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  const [command, chipId, file] = positionals;
  if (values.help || !command) { process.stdout.write(HELP + '\n'); return command || values.help ? 0 : 2; }
  if (!chipId || !isValidChipId(chipId)) { process.stderr.write(`error: a chip id of 4-64 characters [A-Za-z0-9._-] is required\n\n${HELP}\n`); return 2; }
  if (command === 'revoke' || command === 'unrevoke') {
    const url = process.env.UPSTASH_REDIS_REST_URL;
    const token = process.env.UPSTASH_REDIS_REST_TOKEN;
    if (!url || !token) { process.stderr.write('error: UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN are required\n'); return 2; }
    const kv = createUpstashKv({ url, token });
    if (command === 'revoke') await kv.set(revokedKey(chipId), values.reason ?? `revoked ${new Date().toISOString()}`);
    else await kv.del(revokedKey(chipId));
    process.stdout.write(`${chipId}: ${command === 'revoke' ? 'revoked' : 'accepted again'}\n`);
    return 0;
  }
  const env = telemetryEnvSchema.safeParse({ TELEMETRY_DEVICE_KEYS: process.env.TELEMETRY_DEVICE_KEYS || undefined });
  const keys = env.success ? env.data.TELEMETRY_DEVICE_KEYS ?? [] : [];
  if (!env.success || keys.length === 0) { process.stderr.write(`error: TELEMETRY_DEVICE_KEYS ${env.success ? 'is not set' : env.error.issues[0]?.message}\n`); return 2; }
  const master = values.kid ? keys.find((k) => k.kid === values.kid) : keys[0];
  if (!master) { process.stderr.write(`error: no key id "${values.kid}" in TELEMETRY_DEVICE_KEYS\n`); return 2; }
  if (values.region !== undefined && !REGION_ID.test(values.region)) { process.stderr.write('error: --region must be a region id (2-16 characters [a-z0-9], starting with a letter)\n'); return 2; }
  const deviceKey = await deriveDeviceKey(master.secret, chipId, values.region);
  if (command === 'key') {
    const region = values.region ? `region:   ${values.region}\npath:     /telemetry/v1/regions/${values.region}/devices/${chipId}/batches\n` : '';
    process.stdout.write(`chip id:  ${chipId}\n${region}key id:   ${master.kid}\nkey:      ${Buffer.from(deviceKey).toString('base64url')}\n`);
    return 0;
  }
  if (command === 'sign') {
    const body = readFileSync(file ?? 0);
    process.stdout.write(`${KEY_ID_HEADER}: ${master.kid}\n${SIGNATURE_HEADER}: ${await signBody(deviceKey, body)}\n`);
    return 0;
  }
  process.stderr.write(`error: unknown command "${command}"\n\n${HELP}\n`);
  return 2;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
