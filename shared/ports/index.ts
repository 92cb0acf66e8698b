export type { Kv } from './kv.ts';
export type { ObjectStore, ObjectInfo, StoredObject } from './object-store.ts';
export type { Olap, OlapParams } from './olap.ts';
export type { Oltp, OltpQueryable, DatabaseName } from './oltp.ts';
export type {
  Bus, BusHeaders, BusMessage, BatchHandler, HandlerContext, OutgoingMessage, PartitionLag, PublishOptions,
  RetryPolicy, SubscribeOptions, Subscription, TopicMap, TopicName, TopicPartition, TopicSpec, TopicValue,
} from './bus.ts';
