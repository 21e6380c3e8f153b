/**
 * The Redis deployment variables (CONTRACT §10) as a user meets them: each
 * wrong value is one sentence naming the variable, and in a cluster every key
 * of a hub is hash-tagged into one slot while elsewhere they stay as producers
 * know them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../../core/config/load-config.ts';
import { HubError } from '../../core/errors.ts';
import { describeTarget, isCluster, redisTarget } from '../../core/redis/connect.ts';
import { createKeys } from '../../core/redis/keys.ts';

const refusal = (env: Record<string, string>, file = {}) => {
  try {
    resolveConfig(file, env);
  } catch (err) {
    assert.ok(err instanceof HubError);
    return err.message;
  }
  assert.fail('accepted');
};

test('REDIS_SENTINELS, REDIS_SENTINEL_MASTER, REDIS_SENTINEL_PASSWORD, REDIS_CLUSTER_NODES: read, shown without secrets, wrong values refused', () => {
  const config = resolveConfig({}, { REDIS_URL: 'redis://hub:pw@x:6379', REDIS_SENTINELS: '10.0.0.1:26379, 10.0.0.2:26380', REDIS_SENTINEL_PASSWORD: 's3cret' });
  assert.deepEqual(config.redis.sentinels, [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26380 }]);
  assert.equal(config.redis.sentinelMaster, 'mymaster');
  const shown = describeTarget(redisTarget(config));
  assert.equal(shown, 'redis://hub:***@x:6379 (primary "mymaster" of Sentinel 10.0.0.1:26379,10.0.0.2:26380)');
  assert.ok(!shown.includes('s3cret'));
  assert.equal(isCluster(redisTarget(config)), false);
  assert.equal(isCluster(redisTarget(resolveConfig({}, { REDIS_CLUSTER_NODES: '[::1]:7000' }))), true);

  assert.match(refusal({ REDIS_SENTINELS: '10.0.0.1' }), /redis\.sentinels: expected host:port pairs separated by commas, such as 10\.0\.0\.1:26379,10\.0\.0\.2:26379; "10\.0\.0\.1" is not one \(from REDIS_SENTINELS\)/);
  assert.match(refusal({ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 'b:2' }), /REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set/);
  assert.match(refusal({}, { redis: { sentinelPassword: 'x' } }), /redis\.sentinelPassword: a password does not belong in the config file; set REDIS_SENTINEL_PASSWORD/);
});

test('keys: hash-tagged in a cluster ({notify}:in), as producers know them elsewhere (notify:in)', () => {
  const plain = createKeys('notify');
  const tagged = createKeys('notify', { hashTag: true });
  assert.equal(plain.in, 'notify:in');
  assert.equal(tagged.in, '{notify}:in');
  assert.equal(tagged.deliver('matrix'), '{notify}:deliver:matrix');
  assert.equal(tagged.plugin('matrix', 'lease'), '{notify}:plugin:matrix:lease');
  // Delivery ids, and so peers' transaction ids, do not change with the deployment.
  assert.equal(tagged.prefix, 'notify');
  for (const key of [tagged.in, tagged.dead, tagged.events, tagged.message('1-0'), tagged.producerId('x'), tagged.order('m', 't'), tagged.escalation('1-0'), tagged.hubLease]) {
    assert.ok(key.startsWith('{notify}:'), key);
  }
});
