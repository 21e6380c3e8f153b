/**
 * The HTTP ingress's floor, run as a child process: a bare node:http server
 * that reads each POST's body, XADDs it with the fields the hub's ingress
 * writes for `POST /v1/groups/<group>` (on a connection that pipelines as the
 * hub's does) and answers 202 with the entry id. What any HTTP front to a
 * Redis stream costs, with none of the hub's work: no token, no validation,
 * no metrics, no routing of what it accepted.
 *
 * `node bench/lib/bare-ingress.ts <redisUrl> <stream> <port>`
 */
import { createServer } from 'node:http';
import { text } from 'node:stream/consumers';
import { Redis } from 'ioredis';

const [url = 'redis://127.0.0.1:6379', stream = '', portArg = '0'] = process.argv.slice(2);
const redis = new Redis(url, { enableAutoPipelining: true });

const server = createServer(async (req, res) => {
  const answer = (status: number, body: object) => {
    const json = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  };
  const group = (req.url ?? '').slice('/v1/groups/'.length);
  const title = req.headers.title;
  try {
    const body = await text(req);
    answer(202, { id: await redis.xadd(stream, '*', 'to', `#${group}`, 'body', body, 'format', 'html', ...(typeof title === 'string' ? ['subject', title] : []), 'producer', 'bench') });
  } catch (err) {
    answer(503, { error: (err as Error).message });
  }
});
server.listen(Number(portArg), '127.0.0.1');
