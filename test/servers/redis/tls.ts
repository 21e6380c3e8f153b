/**
 * Certificates made with openssl for a test (a CA, a server certificate for
 * 127.0.0.1 signed by it, an expired one, and one from a CA nobody trusts),
 * and a Redis that speaks only TLS with one of them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type RedisProcess, startRedisProcess } from './process.ts';

const run = promisify(execFile);

export interface TestCertificates {
  dir: string;
  /** The CA's certificate: REDIS_CA_FILE. */
  caFile: string;
  server: { cert: string; key: string };
  expired: { cert: string; key: string };
  /** Signed by another CA, which REDIS_CA_FILE does not name. */
  foreign: { cert: string; key: string };
  close(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function makeCertificates(): Promise<TestCertificates> {
  const dir = mkdtempSync(join(tmpdir(), 'hub-tls-'));
  const at = (name: string) => join(dir, name);
  const ca = async (name: string) => run('openssl', ['req', '-x509', ...EC, '-keyout', at(`${name}.key`), '-out', at(`${name}.crt`), '-days', '2', '-subj', `/CN=${name}`]);
  await ca('test-ca');
  await ca('other-ca');
  writeFileSync(at('ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const issue = async (name: string, by: string, days: number) => {
    await run('openssl', ['req', ...EC, '-keyout', at(`${name}.key`), '-out', at(`${name}.csr`), '-subj', '/CN=127.0.0.1']);
    // -days -1: not after is before not before, an expired certificate.
    await run('openssl', ['x509', '-req', '-in', at(`${name}.csr`), '-CA', at(`${by}.crt`), '-CAkey', at(`${by}.key`), '-CAcreateserial', '-out', at(`${name}.crt`), '-days', String(days), '-extfile', at('ext')]);
    return { cert: at(`${name}.crt`), key: at(`${name}.key`) };
  };
  return {
    dir,
    caFile: at('test-ca.crt'),
    server: await issue('server', 'test-ca', 2),
    expired: await issue('expired', 'test-ca', -1),
    foreign: await issue('foreign', 'other-ca', 2),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A Redis on a TLS port only, with `cert`; `config` adds lines (ACL users). The test's own client trusts the CA and does not check expiry. */
export function startTlsRedis(certs: TestCertificates, cert: { cert: string; key: string }, config: string[] = []): Promise<RedisProcess> {
  return startRedisProcess({
    tls: true,
    config: [`tls-cert-file ${cert.cert}`, `tls-key-file ${cert.key}`, `tls-ca-cert-file ${certs.caFile}`, 'tls-auth-clients no', ...config],
    clientOptions: { tls: { ca: readFileSync(certs.caFile), rejectUnauthorized: false } },
  });
}
