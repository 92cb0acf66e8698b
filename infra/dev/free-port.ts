import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Free TCP ports on 127.0.0.1 for services started on them a moment later.
 *
 * Ports are picked at random *below* the kernel's ephemeral range (ip_local_port_range, 32768–60999
 * by default). A port the OS hands out for `listen(0)` comes from that range, and so does the local
 * port of every outgoing connection: between probing a port and the service binding it, any client
 * socket in any process (tests run in parallel, each with pools of database connections) may take it
 * — CI saw `EADDRINUSE` that way. Below the range only another listener can collide, and each pick is
 * probed and never handed out twice by this process.
 */
const given = new Set<number>();
const LOWEST = 20_000;

function ephemeralStart(): number {
  try {
    const [lo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(lo) && lo! > 0 ? lo! : 32_768;
  } catch {
    return 32_768; // not Linux: the IANA dynamic range starts at 49152, so this stays below it too
  }
}

/** Binds `port` (0: any) on 127.0.0.1 and releases it; resolves with the port, or null when taken. */
function probe(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(null));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : null;
      srv.close(() => resolve(bound));
    });
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on and no outgoing connection will take by chance. */
export async function freePort(): Promise<number> {
  const top = ephemeralStart() - 1;
  if (top - LOWEST >= 1_000) {
    for (let attempt = 0; attempt < 100; attempt++) {
      const port = LOWEST + Math.floor(Math.random() * (top - LOWEST + 1));
      if (given.has(port)) continue;
      if ((await probe(port)) === port) {
        given.add(port);
        return port;
      }
    }
  }
  // A system whose ephemeral range leaves no room below it: let the OS choose.
  for (;;) {
    const port = await probe(0);
    if (port !== null && !given.has(port)) {
      given.add(port);
      return port;
    }
  }
}
