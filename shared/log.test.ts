import { describe, expect, it } from 'vitest';
import { createLogger, redact } from './log.ts';

describe('logs', () => {
  it('writes one JSON line with level, message and fields', () => {
    const lines: string[] = [];
    createLogger({ write: (l) => lines.push(l), base: { service: 'edge' } }).info('hello', { n: 1 });
    const rec = JSON.parse(lines[0]!);
    expect(rec).toMatchObject({ level: 'info', msg: 'hello', service: 'edge', n: 1 });
    expect(typeof rec.ts).toBe('string');
  });

  it('drops records below the configured level', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', write: (l) => lines.push(l) });
    log.info('no'); log.debug('no'); log.warn('yes'); log.error('yes');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['yes', 'yes']);
  });

  it('redacts secrets by key, bearer tokens, JWTs and URL credentials', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyMSJ9.c2lnbmF0dXJlLXZhbHVl';
    const lines: string[] = [];
    createLogger({ write: (l) => lines.push(l) }).child({ requestId: 'r1' }).info(`got Bearer abc.def.ghi`, {
      password: 'hunter2', refresh_token: 'rt-123', nested: { accessToken: 'at', note: `token ${jwt}` },
      url: 'postgres://bionic:s3cret@127.0.0.1:5432/crm', err: new Error(`bad ${jwt}`),
      env: { ANALYTICS_PSEUDONYM_KEY: 'pk-0123456789abcdef' }, analytics: { pseudonymKey: 'pk-fedcba9876543210' },
    });
    const out = lines[0]!;
    for (const secret of ['hunter2', 'rt-123', '"at"', jwt, 's3cret', 'abc.def.ghi', 'pk-0123456789abcdef', 'pk-fedcba9876543210']) expect(out).not.toContain(secret);
    const rec = JSON.parse(out);
    expect(rec.requestId).toBe('r1');
    expect(rec.url).toBe('postgres://bionic:[REDACTED]@127.0.0.1:5432/crm');
    expect(rec.msg).toBe('got Bearer [REDACTED]');
    expect(rec.err.message).toBe('bad [REDACTED]');
  });

  it('redacts OAuth parameters in URLs and session cookies in header text', () => {
    const out = redact('GET /auth/callback?code=abc123secret&state=st4te&iss=x; cookie: __Host-session=c00kie; other=1 refresh_token=r3fresh&grant_type=refresh_token') as string;
    for (const leaked of ['abc123secret', 'st4te', 'c00kie', 'r3fresh']) expect(out).not.toContain(leaked);
    expect(out).toContain('iss=x');
    expect(out).toContain('other=1');
  });

  it('leaves ordinary values alone', () => {
    expect(redact({ user: 'user1', count: 3, ok: true, list: ['a'] })).toEqual({ user: 'user1', count: 3, ok: true, list: ['a'] });
  });
});

describe('notice', () => {
  it('is written at every level but silent', () => {
    const lines: string[] = [];
    createLogger({ level: 'error', write: (l) => lines.push(l) }).notice('edge listening', { url: 'http://x' });
    createLogger({ level: 'silent', write: (l) => lines.push(l) }).notice('hidden');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['edge listening']);
  });
});
