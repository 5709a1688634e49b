/**
 * Baton's broker as the benchmark runs it: `node server/src/main.ts` in a child process of its own,
 * configured only through its documented environment variables.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

export interface BrokerProcess {
  readonly pid: number;
  /** host:port for the SDK: the native gRPC port when asked for, else the main one. */
  readonly address: string;
  /** http://host:port of the main port, which also serves `/metrics`. */
  readonly mainUrl: string;
  /** Stops it with SIGTERM (the broker drains and exits), killing it if it takes too long. */
  stop(): Promise<void>;
}

export interface BrokerOptions {
  databaseUrl: string;
  /** Extra environment (BATON_POOL_SIZE and the like). */
  env?: Record<string, string>;
  /** Write a V8 CPU profile of the broker into this folder when it exits. */
  cpuProfileDir?: string;
  /** Open the native gRPC port (BATON_GRPC_PORT) and give its address to the SDK. */
  nativeGrpc?: boolean;
}

export async function startBrokerProcess(options: BrokerOptions): Promise<BrokerProcess> {
  const port = await freePort();
  const grpcPort = options.nativeGrpc ? await freePort() : null;
  const execArgv = options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
  const child = spawn(process.execPath, [...execArgv, path.join(ROOT, 'server/src/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      BATON_HOST: '127.0.0.1',
      BATON_PORT: String(port),
      ...(grpcPort === null ? {} : { BATON_GRPC_PORT: String(grpcPort) }),
      BATON_LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  // Never leave a broker behind, whatever ends this process.
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => process.off('exit', killOnExit));
  await waitReady(child, exited);
  return {
    pid: child.pid!,
    address: `127.0.0.1:${grpcPort ?? port}`,
    mainUrl: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves on the broker's ready line; its other output is passed on, marked as the broker's. */
function waitReady(child: ChildProcess, exited: Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending = '';
    let ready = false;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (!ready && isReadyLine(line)) {
          ready = true;
          resolve();
        } else if (line.trim()) {
          process.stderr.write(`[broker] ${line}\n`);
        }
      }
    });
    void exited.then(() => {
      if (!ready) reject(new Error(`the broker exited before it was ready (code ${child.exitCode})`));
    });
  });
}

/** The broker's ready line: a JSON log line whose msg is server/src/main.ts's READY_MESSAGE. */
function isReadyLine(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    return (JSON.parse(line) as { msg?: unknown }).msg === 'broker ready';
  } catch {
    return false;
  }
}

/** A port nobody listens on right now. (Not imported from the server: worker processes load this file.) */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
