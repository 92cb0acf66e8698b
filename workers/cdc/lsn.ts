/**
 * WAL positions and replica versions. An LSN is a 64-bit byte position, written `HI/LO` in hex.
 *
 * A replica row's `_version` (ClickHouse UInt128) is the commit LSN of the transaction that wrote it,
 * shifted left by 32 bits, plus the change's position inside that transaction. Commit LSNs follow
 * commit order and writers of one row are serialised by its lock, so for any one key a later change
 * always has a higher version; two changes never tie, even inside one transaction.
 *
 * A snapshot taken "as of" position P gets the version `P << 32 | 0xFFFFFFFF`: above every change
 * committed at or before P (the snapshot already contains them) and below every later one (which the
 * stream delivers and which must win).
 */

const SEQ_BITS = 32n;
/** The snapshot's position inside "its" transaction: after any real change. */
export const SNAPSHOT_SEQ = (1n << SEQ_BITS) - 1n;

/** Parses `16/B374D848` (case-insensitive, zero padding allowed). */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new RangeError(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Formats as PostgreSQL does (`0/1B86FC9`). */
export function formatLsn(lsn: bigint): string {
  if (lsn < 0n || lsn >= 1n << 64n) throw new RangeError(`LSN out of range: ${lsn}`);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The `_version` of the `seq`-th change (0-based) of the transaction committed at `commitLsn`. */
export function versionOf(commitLsn: bigint, seq: number | bigint): bigint {
  const s = BigInt(seq);
  if (s < 0n || s >= SNAPSHOT_SEQ) throw new RangeError(`change position out of range: ${s}`);
  return (commitLsn << SEQ_BITS) | s;
}

/** The `_version` of rows a snapshot loads when every transaction committed at or before `lsn` is in it. */
export const snapshotVersion = (lsn: bigint): bigint => (lsn << SEQ_BITS) | SNAPSHOT_SEQ;

/** The commit LSN a version was derived from. */
export const lsnOfVersion = (version: bigint): bigint => version >> SEQ_BITS;
