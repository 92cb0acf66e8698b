export type { Kv } from './kv.ts';
export type { ObjectStore, ObjectInfo, StoredObject } from './object-store.ts';
export type { Olap, OlapParams } from './olap.ts';
export type { Oltp, OltpQueryable, DatabaseName } from './oltp.ts';
