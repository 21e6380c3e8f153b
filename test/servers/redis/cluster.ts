/**
 * A Redis Cluster of three primaries (no replicas) of a test's own, made
 * with `redis-cli --cluster create`, with a small node timeout. `reshard`
 * moves slots with `redis-cli --cluster reshard`, as an operator would.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type RedisProcess, startRedisProcess } from './process.ts';
import { waitFor } from './sentinel.ts';

const run = promisify(execFile);

export interface TestCluster {
  nodes: RedisProcess[];
  /** `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`: REDIS_CLUSTER_NODES. */
  addresses: string;
  /** The slot of a key, as the cluster computes it. */
  slotOf(key: string): Promise<number>;
  /** The node that serves a slot now. */
  ownerOf(slot: number): Promise<RedisProcess>;
  /** The lowest slot a node serves: what `reshard` moves first. */
  firstSlotOf(node: RedisProcess): Promise<number>;
  /** `redis-cli --cluster reshard`: move `slots` slots (the lowest first) from one node to another, keys and all. */
  reshard(from: RedisProcess, to: RedisProcess, slots: number): Promise<string>;
  close(): Promise<void>;
}

export async function startCluster(): Promise<TestCluster> {
  const nodes: RedisProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(await startRedisProcess({ config: ['cluster-enabled yes', 'cluster-config-file nodes.conf', 'cluster-node-timeout 2000', 'appendonly no'] }));
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 60_000 });
    await waitFor('the cluster to be ok on every node', async () => {
      for (const node of nodes) {
        const c = node.client();
        try {
          if (!/cluster_state:ok/.test((await c.call('CLUSTER', 'INFO')) as string)) return false;
        } finally {
          c.disconnect();
        }
      }
      return true;
    });
    const ask = async <T>(node: RedisProcess, fn: (c: ReturnType<RedisProcess['client']>) => Promise<T>): Promise<T> => {
      const c = node.client();
      try {
        return await fn(c);
      } finally {
        c.disconnect();
      }
    };
    const nodeId = (node: RedisProcess) => ask(node, async (c) => (await c.call('CLUSTER', 'MYID')) as string);
    const slotRanges = (node: RedisProcess) =>
      ask(node, async (c) => (await c.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, string]]>);
    return {
      nodes,
      addresses: addresses.join(','),
      slotOf: (key) => ask(nodes[0]!, async (c) => Number(await c.call('CLUSTER', 'KEYSLOT', key))),
      async ownerOf(slot) {
        const ranges = await slotRanges(nodes[0]!);
        const range = ranges.find(([from, to]) => slot >= from && slot <= to)!;
        return nodes.find((n) => n.port === range[2][1])!;
      },
      async firstSlotOf(node) {
        const ranges = await slotRanges(node);
        return Math.min(...ranges.filter((r) => r[2][1] === node.port).map(([from]) => from));
      },
      async reshard(from, to, slots) {
        const { stdout } = await run(
          'redis-cli',
          ['--cluster', 'reshard', `127.0.0.1:${from.port}`, '--cluster-from', await nodeId(from), '--cluster-to', await nodeId(to), '--cluster-slots', String(slots), '--cluster-yes'],
          { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
        );
        return stdout;
      },
      async close() {
        await Promise.all(nodes.map((n) => n.close()));
      },
    };
  } catch (err) {
    await Promise.all(nodes.map((n) => n.close()));
    throw err;
  }
}
