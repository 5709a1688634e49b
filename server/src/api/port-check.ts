import net from 'node:net';
import { StartupError } from '../config.ts';

/**
 * Binds each port the broker will listen on and lets it go again, before a database is started or
 * touched: a port another program holds is refused in one line while nothing needs undoing. (The
 * real listen later can still lose a race for the port; `listenFailure` words that too.)
 */
export async function checkPortsFree(host: string, ports: { variable: string; port: number }[]): Promise<void> {
  for (const { variable, port } of ports) {
    await new Promise<void>((resolve, reject) => {
      const probe = net.createServer();
      probe.once('error', (error) => reject(listenFailure(error, variable, host, port)));
      probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
    });
  }
}

/** A failed listen as one line naming the variable to change, or the error itself when it is not one of those. */
export function listenFailure(error: unknown, variable: string, host: string, port: number): unknown {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return new StartupError(
        `${variable} ${port} on ${host} is already in use (by another broker?): stop what listens there, or set ${variable} to a free port (0 picks one)`,
      );
    case 'EACCES':
      return new StartupError(`${variable} ${port} on ${host} needs privileges this process lacks: use a port of 1024 or more`);
    case 'EADDRNOTAVAIL':
      return new StartupError(`BATON_HOST ${host} is not an address of this machine: use 127.0.0.1, 0.0.0.0 or one of its own addresses`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return new StartupError(`BATON_HOST ${host} is not a known host name: use an IP address or a name this machine resolves`);
    default:
      return error;
  }
}
