/**
 * A small `EventSource` over fetch for tests on Node 20 (which has none), with what tests need
 * beyond the standard: request headers (the session cookie) and {@link FetchEventSource.dropAll},
 * which cuts live connections the way a network does, so the browser-like reconnect — with
 * `Last-Event-ID` — can be exercised. Plug it into tRPC's `httpSubscriptionLink({ EventSource })`.
 */
export interface FetchEventSourceInit { headers?: Record<string, string>; withCredentials?: boolean }

export class FetchEventSource extends EventTarget {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSED = 2;
  private static live = new Set<FetchEventSource>();

  readyState = 0;
  readonly url: string;
  readonly withCredentials = false;
  /** Every response status this source saw (tests assert on refusals). */
  readonly statuses: number[] = [];
  private lastEventId = '';
  private retryMs = 200;
  private current: AbortController | null = null;

  constructor(url: string | URL, private readonly init: FetchEventSourceInit = {}) {
    super();
    this.url = String(url);
    FetchEventSource.live.add(this);
    void this.run();
  }

  /** Cuts every open connection; each source reconnects by itself, sending `Last-Event-ID`. */
  static dropAll(): number {
    let n = 0;
    for (const es of FetchEventSource.live) if (es.readyState === 1 && es.current) { es.current.abort(); n++; }
    return n;
  }

  close(): void {
    this.readyState = 2;
    this.current?.abort();
    FetchEventSource.live.delete(this);
  }

  private async run(): Promise<void> {
    while (this.readyState !== 2) {
      const ac = (this.current = new AbortController());
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', ...this.init.headers };
        if (this.lastEventId) headers['last-event-id'] = this.lastEventId;
        const res = await fetch(this.url, { headers, signal: ac.signal });
        this.statuses.push(res.status);
        if (!res.ok || !res.headers.get('content-type')?.includes('text/event-stream')) {
          await res.body?.cancel();
          this.readyState = 2; // as browsers do: a refusal is final
          FetchEventSource.live.delete(this);
          this.dispatchEvent(Object.assign(new Event('error'), { status: res.status }));
          return;
        }
        this.readyState = 1;
        this.dispatchEvent(new Event('open'));
        await this.read(res.body!);
      } catch {
        // aborted or the connection broke: reconnect below unless closed
      }
      if (this.readyState === 2) return;
      this.readyState = 0;
      this.dispatchEvent(new Event('error'));
      await new Promise((r) => setTimeout(r, this.retryMs));
    }
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    const reader = body.getReader();
    let buffer = '';
    let event = { type: '', data: [] as string[], id: null as string | null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.search(/\r\n|\n|\r/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (event.id !== null) this.lastEventId = event.id;
          if (event.data.length) {
            this.dispatchEvent(new MessageEvent(event.type || 'message', { data: event.data.join('\n'), lastEventId: this.lastEventId }));
          }
          event = { type: '', data: [], id: null };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event.type = v;
        else if (field === 'data') event.data.push(v);
        else if (field === 'id' && !v.includes('\0')) event.id = v;
        else if (field === 'retry' && /^\d+$/.test(v)) this.retryMs = Number(v);
      }
    }
  }
}
