/** A process or server the embedded stack runs; `exited` settles when it stops for any reason. */
export interface RunningService {
  readonly name: string;
  /** The URL clients use (postgres://…, redis://…, http://…). */
  readonly url: string;
  /** OS pid of the child process, when the service is one. */
  readonly pid?: number;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  stop(): Promise<void>;
}
