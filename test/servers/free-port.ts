import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A free loopback port for a process a test starts and tells which port to
 * bind. Picked at random below the kernel's ephemeral range, not by the
 * kernel: a port from that range, freed by the probe, can be taken by any
 * outgoing connection before the process binds it, and a second copy of the
 * suite on the machine makes thousands of them (a hub then refused to start:
 * "the port is in use by another process").
 */
export async function freePort(): Promise<number> {
  const below = EPHEMERAL_LOW;
  for (let tries = 0; tries < 100; tries += 1) {
    const port = 10_000 + Math.floor(Math.random() * (below - 10_000));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free loopback port found between 10000 and ${below}`);
}

/** The lowest port the kernel hands to outgoing connections (Linux's default 32768 elsewhere). */
const EPHEMERAL_LOW = ephemeralLow();

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}
