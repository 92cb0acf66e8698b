import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/config.ts';
import { MigrationError } from '../db/migrate.ts';
import { CliError, EXIT, explain, redactUrl, unreachableReason } from './errors.ts';

describe('explain', () => {
  it('keeps a CliError\'s message and exit code', () => {
    expect(explain(new CliError('no saga x', EXIT.NOT_FOUND))).toEqual({ message: 'no saga x', exitCode: 4 });
  });

  it('treats invalid configuration as a usage error naming every variable', () => {
    const r = explain(new ConfigError([{ variable: 'A_URL', message: 'is required but not set' }, { variable: 'B', message: 'bad' }]));
    expect(r.exitCode).toBe(EXIT.USAGE);
    expect(r.message).toBe('Invalid configuration:\n  - A_URL: is required but not set\n  - B: bad');
  });

  it('puts a failed migration on one line, exit 1', () => {
    const r = explain(new MigrationError('migration x.sql failed: syntax error\n  at line 3', 'x.sql'));
    expect(r).toEqual({ message: 'migration x.sql failed: syntax error at line 3', exitCode: EXIT.FAILURE });
  });

  it('says a service is unreachable for network errors, whatever threw them', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5'), { code: 'ECONNREFUSED' });
    expect(explain(err)).toEqual({ message: 'cannot reach a service: connection refused (connect ECONNREFUSED 127.0.0.1:5)', exitCode: 1 });
    expect(unreachableReason(Object.assign(new Error('x'), { code: 'CONNECT_TIMEOUT' }))).toBe('connection timed out');
    expect(unreachableReason(Object.assign(new Error('x'), { code: '42P01' }))).toBeUndefined();
    expect(unreachableReason(null)).toBeUndefined();
  });

  it('reduces anything else to its message on one line', () => {
    expect(explain(new Error('first\nsecond'))).toEqual({ message: 'first second', exitCode: 1 });
    expect(explain('plain')).toEqual({ message: 'plain', exitCode: 1 });
  });
});

describe('redactUrl', () => {
  it('hides the password and nothing else', () => {
    expect(redactUrl('postgres://bionic:s3cret@db.example:5432/crm')).toBe('postgres://bionic:***@db.example:5432/crm');
    expect(redactUrl('postgres://db.example/crm')).toBe('postgres://db.example/crm');
    expect(redactUrl('not a url')).toBe('(invalid URL)');
  });
});
