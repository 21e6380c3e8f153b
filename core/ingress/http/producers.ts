import { createHash, timingSafeEqual } from 'node:crypto';
import type { HubConfig } from '../../config/schema.ts';

type TokenConfig = HubConfig['httpIngress']['tokens'][number];

/** A producer the ingress knows: its name, the groups it may address, its rate. */
export interface Producer {
  name: string;
  mayAddress(group: string): boolean;
  /** 0 when the request may go on; otherwise the seconds until it may (for `Retry-After`). */
  throttle(now?: number): number;
}

/**
 * The producer tokens of the HTTP ingress. A presented token is compared with
 * every known one by their SHA-256 digests in constant time, all of them
 * every time, so that neither the answer's timing nor an early exit tells how
 * much of a guess was right.
 */
export class Producers {
  #known: Array<{ digest: Buffer; producer: Producer }>;

  constructor(tokens: readonly TokenConfig[]) {
    this.#known = tokens.map((t) => ({ digest: digest(t.token), producer: producerOf(t) }));
  }

  get size(): number {
    return this.#known.length;
  }

  /** The producer whose token is `authorization`'s bearer token, or undefined. */
  authenticate(authorization: string | undefined): Producer | undefined {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    if (!match) return undefined;
    const presented = digest(match[1]!);
    let found: Producer | undefined;
    for (const { digest: known, producer } of this.#known) {
      if (timingSafeEqual(known, presented)) found = producer;
    }
    return found;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function producerOf(config: TokenConfig): Producer {
  const all = config.groups.includes('*');
  const groups = new Set(config.groups.map((g) => g.normalize('NFC')));
  const bucket = config.rate ? tokenBucket(config.rate.count, config.rate.periodMs) : undefined;
  return {
    name: config.name,
    mayAddress: (group) => all || groups.has(group.normalize('NFC')),
    throttle: (now = Date.now()) => bucket?.(now) ?? 0,
  };
}

/**
 * At most `count` requests per `periodMs`, in bursts of up to `count`: the
 * bucket refills continuously. Returns 0 and takes a token, or the whole
 * seconds until the next token.
 */
function tokenBucket(count: number, periodMs: number): (now: number) => number {
  const perMs = count / periodMs;
  let tokens = count;
  let at = Date.now();
  return (now) => {
    tokens = Math.min(count, tokens + (now - at) * perMs);
    at = now;
    if (tokens >= 1) {
      tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - tokens) / perMs / 1000));
  };
}
