import type { Server } from 'node:http';
import { HubError } from '../errors.ts';

/** What a port serves and the variables that place it, for the sentence when it cannot open. */
export interface PortNames {
  serving: string;
  hostVar: string;
  portVar: string;
}

/** Listen on `host:port`; a port that cannot open is a configuration error naming the address and the variable to change. */
export function listen(server: Server, host: string, port: number, names: PortNames): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port, names)));
    server.listen(port, host, () => resolve());
  });
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number, { serving, hostVar, portVar }: PortNames): HubError {
  const unresolved = `that host name does not resolve; set ${hostVar} to an address of this machine (0.0.0.0 for all)`;
  const why: Record<string, string> = {
    EADDRINUSE: `the port is in use by another process; set ${portVar} to a free port (0 picks one)`,
    EACCES: `the port needs privileges this process does not have; set ${portVar} above 1023`,
    EADDRNOTAVAIL: `no network interface of this machine has that address; set ${hostVar} to one of its addresses (0.0.0.0 for all, 127.0.0.1 for this machine only)`,
    ENOTFOUND: unresolved,
    EAI_AGAIN: unresolved,
  };
  const reason = why[err.code ?? ''] ?? `${err.message}; check ${hostVar} and ${portVar}`;
  return new HubError('HUB_ERR_CONFIG', `cannot serve ${serving} on ${host}:${port}: ${reason}`, { cause: err });
}
