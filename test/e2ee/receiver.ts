/**
 * A second Matrix client for the end-to-end encryption tests: matrix-js-sdk
 * with its own Rust crypto (in memory: its own store, apart from the hub's),
 * a manual /sync loop that feeds the crypto its to-device messages, device
 * lists and key counts, and a decrypt of any room event the homeserver holds.
 */
import { ClientPrefix, MatrixClient, MatrixEvent, Method } from 'matrix-js-sdk';

type Json = Record<string, unknown>;
interface Backend {
  processSyncChanges(changes: { toDeviceEvents: object[]; deviceLists?: object; oneTimeKeysCounts?: Record<string, number>; unusedFallbackKeys?: Set<string> }): Promise<unknown>;
  onSyncCompleted(data: object): void;
}
const noop = () => {};
const silent = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, getChild: () => silent };

export interface Receiver {
  readonly deviceId: string;
  /** Decrypt one event as stored by the homeserver; the clear content, or throws. */
  decrypt(event: Json): Promise<Json>;
  /** One sync round (to receive room keys sent since the last). */
  syncOnce(): Promise<void>;
  close(): Promise<void>;
}

/** Log `localpart` in on a new device (password `pw-<localpart>`), start its crypto and sync until its keys are uploaded. */
export async function startReceiver(baseUrl: string, userId: string, password: string): Promise<Receiver> {
  const login = await fetch(`${baseUrl}/_matrix/client/v3/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: userId }, password }),
  });
  const session = (await login.json()) as { access_token: string; device_id: string; user_id: string };
  const client = new MatrixClient({ baseUrl, accessToken: session.access_token, userId: session.user_id, deviceId: session.device_id, logger: silent });
  await client.initRustCrypto({ useIndexedDB: false });
  const crypto = client.getCrypto() as unknown as Backend;
  let since: string | undefined;
  const syncOnce = async () => {
    const query: Record<string, string> = { timeout: '0' };
    if (since) query.since = since;
    const res = await client.http.authedRequest<Json & { next_batch: string }>(Method.Get, '/sync', query, undefined, { prefix: ClientPrefix.V3, priority: undefined });
    since = res.next_batch;
    await crypto.processSyncChanges({
      toDeviceEvents: ((res.to_device as Json | undefined)?.events as object[] | undefined) ?? [],
      deviceLists: res.device_lists as object | undefined,
      oneTimeKeysCounts: res.device_one_time_keys_count as Record<string, number> | undefined,
      unusedFallbackKeys: new Set((res.device_unused_fallback_key_types as string[] | undefined) ?? []),
    });
    crypto.onSyncCompleted({});
  };
  // The first syncs upload the device's keys (the crypto's outgoing requests run after each).
  for (let i = 0; i < 3; i++) {
    await syncOnce();
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    deviceId: session.device_id,
    syncOnce,
    async decrypt(raw) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        await syncOnce();
        const event = new MatrixEvent(raw as never);
        await client.decryptEventIfNeeded(event);
        if (!event.isDecryptionFailure()) return event.getContent() as Json;
        if (Date.now() > deadline) throw new Error(`${userId}/${session.device_id} cannot decrypt ${String(raw.event_id)}: ${event.decryptionFailureReason} ${String(event.getContent().body)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async close() {
      client.stopClient();
    },
  };
}
