/**
 * The container image without a container engine (none runs here): the Dockerfile is read, and
 * every instruction it holds is carried out on the host, in order, in a scratch folder per stage,
 * with the image's environment and nothing of this process's: the build context (this working
 * tree less .dockerignore), the manifests and sources copied as COPY says, `npm ci` as RUN says
 * (the npm cache of this machine makes it a few seconds), then what compose.yaml runs on that
 * image: the migration, the broker as CMD, its HEALTHCHECK, the example worker doing a job, and
 * STOPSIGNAL with a clean exit within stop_grace_period. An instruction the test does not know
 * fails it, so the file and the test cannot drift apart.
 *
 * What the host cannot show: the `node` user's rights (the test runs as whoever runs it) and the
 * image's own Node (the host's Node 24, from this repository's `node` dev dependency, stands in).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../server/src/store/embedded-postgres.ts';
import { createTestDatabase } from './support/database.ts';
import { eventually, readyLine } from './support/processes.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions in order: comments and blank lines dropped, continued lines (`\` at the end) joined. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (!pending) startLine = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const whole = pending + line;
    pending = '';
    const match = /^(\S+)\s+(.*)$/.exec(whole);
    if (!match) throw new Error(`Dockerfile line ${startLine}: cannot read "${whole}"`);
    instructions.push({ keyword: match[1].toUpperCase(), args: match[2].trim(), line: startLine });
  });
  return instructions;
}

/** `KEY=value KEY2=value2` (values may be double-quoted), as ENV takes them. */
function parseEnv(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [, key, quoted, bare] of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g)) env[key] = quoted ?? bare;
  if (Object.keys(env).length === 0) throw new Error(`ENV ${args}: only the KEY=value form is read`);
  return env;
}

/** Leading `--name=value` flags, then the rest. */
function takeFlags(args: string): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = args;
  for (let match = /^--([a-z-]+)=(\S+)\s+/.exec(rest); match; match = /^--([a-z-]+)=(\S+)\s+/.exec(rest)) {
    flags[match[1]] = match[2];
    rest = rest.slice(match[0].length);
  }
  return { flags, rest };
}

/** A duration as Docker and compose write it (`30s`, `1m30s`, `500ms`), in milliseconds. */
function durationMs(text: string): number {
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(amount) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!;
  if (total === 0) throw new Error(`not a duration: ${text}`);
  return total;
}

/**
 * One service of compose.yaml, read from its lines: the file is written in the block style this
 * reads (two-space indents), and the test fails if a key it needs is not there.
 */
function composeService(text: string, name: string): { keys: Map<string, string>; environment: Map<string, string> } {
  const lines = text.split('\n');
  const start = lines.indexOf(`  ${name}:`);
  if (start < 0) throw new Error(`compose.yaml has no service "${name}"`);
  const keys = new Map<string, string>();
  const environment = new Map<string, string>();
  let inEnvironment = false;
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    if (!line.startsWith('    ')) break;
    const key = /^ {4}([a-z_]+):\s*(.*)$/.exec(line);
    if (key) {
      keys.set(key[1], key[2]);
      inEnvironment = key[1] === 'environment';
      continue;
    }
    const variable = /^ {6}([A-Z_][A-Z0-9_]*):\s*(.*)$/.exec(line);
    if (inEnvironment && variable) environment.set(variable[1], variable[2].replace(/^"(.*)"$/, '$1'));
  }
  return { keys, environment };
}

/** The files `docker build .` is given: this working tree's files less those .dockerignore names. */
async function buildContext(into: string): Promise<void> {
  const ignore = (await readFile(path.join(ROOT, '.dockerignore'), 'utf8'))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const ignored = (file: string) => {
    // A pattern that names a folder leaves out everything in it.
    const parts = file.split('/');
    return parts.some((_, i) => ignore.some((pattern) => path.matchesGlob(parts.slice(0, i + 1).join('/'), pattern)));
  };
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((file) => file && !ignored(file) && existsSync(path.join(ROOT, file)));
  for (const file of files) {
    await mkdir(path.dirname(path.join(into, file)), { recursive: true });
    await cp(path.join(ROOT, file), path.join(into, file), { verbatimSymlinks: true });
  }
}

/** What the image is, once its instructions ran: its folder, environment and run settings. */
interface Image {
  /** The final stage's WORKDIR, on the host. */
  workdir: string;
  env: Record<string, string>;
  user: string | null;
  exposed: number[];
  stopSignal: NodeJS.Signals;
  healthcheck: { command: string[]; timeoutMs: number };
  cmd: string[];
}

/** The PATH of the node image, with the host's Node 24 first where the image has its own. */
const IMAGE_PATH = [path.dirname(process.execPath), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');

/**
 * How this machine reaches the npm registry (a proxy's certificate authority, a proxy): a build on
 * it would be given the same (`docker build --build-arg`, or the daemon's settings); not the image's.
 */
const NETWORK_ENV = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'];

function imageEnv(env: Record<string, string>): Record<string, string> {
  const network = Object.fromEntries(NETWORK_ENV.filter((key) => process.env[key]).map((key) => [key, process.env[key]!]));
  // HOME only for npm's cache: a build's RUN has one too (root's).
  return { PATH: IMAGE_PATH, HOME: os.homedir(), ...network, ...env };
}

/** Runs a command to its end; rejects with its output if it fails. */
function run(command: string[], cwd: string, env: Record<string, string>, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`${command.join(' ')} exited with ${code ?? signal} in ${cwd}:\n${output}`));
    });
  });
}

/** Carries out the Dockerfile's instructions on the host, a folder under `scratch` per stage. */
async function buildImage(instructions: Instruction[], context: string, scratch: string): Promise<Image> {
  interface Stage {
    root: string;
    workdir: string;
    env: Record<string, string>;
  }
  const stages = new Map<string, Stage>();
  let stage: Stage | null = null;
  const image: Partial<Image> & { exposed: number[]; user: string | null } = { exposed: [], user: null };
  const inStage = (target: string) => path.join(stage!.root, path.posix.resolve(stage!.workdir, target));
  for (const { keyword, args, line } of instructions) {
    const where = `Dockerfile line ${line}: ${keyword}`;
    if (keyword !== 'FROM' && !stage) throw new Error(`${where} before FROM`);
    switch (keyword) {
      case 'FROM': {
        const [base, as, name] = args.split(/\s+/);
        // The host's Node stands in for the image's: the same major version, or the test means nothing.
        expect(base, where).toBe('node:24-slim');
        expect(process.versions.node.split('.')[0], 'the Node running this test').toBe('24');
        stage = { root: path.join(scratch, `stage-${stages.size}`), workdir: '/', env: {} };
        stages.set(as?.toUpperCase() === 'AS' ? name : String(stages.size), stage);
        await mkdir(stage.root, { recursive: true });
        break;
      }
      case 'WORKDIR':
        stage!.workdir = path.posix.resolve(stage!.workdir, args);
        await mkdir(path.join(stage!.root, stage!.workdir), { recursive: true });
        break;
      case 'ENV':
        Object.assign(stage!.env, parseEnv(args));
        break;
      case 'COPY': {
        const { flags, rest } = takeFlags(args);
        const parts = rest.split(/\s+/);
        const destination = parts.pop()!;
        const from = flags.from === undefined ? null : stages.get(flags.from);
        if (flags.from !== undefined && !from) throw new Error(`${where}: no stage "${flags.from}"`);
        for (const source of parts) {
          const origin = from ? path.join(from.root, source) : path.join(context, source);
          if (!existsSync(origin)) throw new Error(`${where}: ${source} is not in the ${from ? 'stage' : 'build context'}`);
          // Docker's rules: a folder's contents go into the destination; a file goes into a
          // destination that ends in "/", else becomes it.
          const target = destination.endsWith('/') && !(await isFolder(origin)) ? path.join(inStage(destination), path.basename(source)) : inStage(destination);
          await mkdir(path.dirname(target), { recursive: true });
          await cp(origin, target, { recursive: true, verbatimSymlinks: true });
        }
        break;
      }
      case 'RUN':
        if (args.startsWith('[')) throw new Error(`${where}: write RUN in shell form`);
        await run(['/bin/sh', '-c', args], path.join(stage!.root, stage!.workdir), imageEnv(stage!.env), 120_000);
        break;
      case 'USER':
        image.user = args;
        break;
      case 'EXPOSE':
        image.exposed.push(...args.split(/\s+/).map(Number));
        break;
      case 'STOPSIGNAL':
        image.stopSignal = args as NodeJS.Signals;
        break;
      case 'HEALTHCHECK': {
        const { flags, rest } = takeFlags(args);
        const command = /^CMD\s+(\[.*\])$/.exec(rest);
        if (!command) throw new Error(`${where}: write HEALTHCHECK … CMD ["…"] (exec form)`);
        image.healthcheck = { command: JSON.parse(command[1]) as string[], timeoutMs: durationMs(flags.timeout ?? '30s') };
        break;
      }
      case 'CMD':
        if (!args.startsWith('[')) throw new Error(`${where}: write CMD in exec form, so that the broker is PID 1 and gets STOPSIGNAL`);
        image.cmd = JSON.parse(args) as string[];
        break;
      default:
        throw new Error(`${where}: test/deploy-commands.test.ts does not know this instruction; teach it, so that the host runs what the image would`);
    }
  }
  return { ...(image as Image), workdir: path.join(stage!.root, stage!.workdir), env: stage!.env };
}

async function isFolder(file: string): Promise<boolean> {
  return (await stat(file)).isDirectory();
}

/** A long-running process of the image, its output kept. */
function start(command: string[], cwd: string, env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(command[0], command.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe('the container image, its commands run on the host', () => {
  let scratch: string;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'baton-image-'));
    db = await createTestDatabase();
    // An empty schema, as a new PostgreSQL has: the migration step then has everything to do.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('drop schema public cascade; create schema public');
    await client.end();
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(children.map((child) => (child.exitCode === null && child.signalCode === null ? new Promise((r) => child.once('exit', r)) : null)));
    await db?.drop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('installs, migrates, starts, passes its health check, serves the example worker and stops on SIGTERM within the grace period', async () => {
    const dockerfile = parseDockerfile(await readFile(path.join(ROOT, 'Dockerfile'), 'utf8'));
    const compose = await readFile(path.join(ROOT, 'compose.yaml'), 'utf8');
    const context = path.join(scratch, 'context');
    await buildContext(context);
    const image = await buildImage(dockerfile, context, path.join(scratch, 'image'));

    expect(image.user, 'the image runs as a user of its own, not root').toBe('node');
    expect(image.stopSignal).toBe('SIGTERM');
    expect(image.exposed.sort()).toEqual([Number(image.env.BATON_PORT), Number(image.env.BATON_GRPC_PORT)].sort());
    expect(image.cmd).toEqual(['node', 'server/src/main.ts']);

    // compose.yaml's services, on this image.
    const migrate = composeService(compose, 'migrate');
    const broker = composeService(compose, 'broker');
    const worker = composeService(compose, 'worker');
    const drainMs = Number(broker.environment.get('BATON_DRAIN_MS'));
    const graceMs = durationMs(broker.keys.get('stop_grace_period') ?? '10s');
    expect(graceMs, 'stop_grace_period leaves the broker its drain and then some').toBeGreaterThan(drainMs);

    // Ports as a `-p` mapping would give them: the image's own may be taken on this machine.
    const ports = { main: await freePort(), grpc: await freePort() };
    const containerEnv = (service: ReturnType<typeof composeService>, extra: Record<string, string> = {}) =>
      imageEnv({
        ...image.env,
        ...Object.fromEntries(service.environment),
        DATABASE_URL: db.url,
        BATON_PORT: String(ports.main),
        BATON_GRPC_PORT: String(ports.grpc),
        ...extra,
      });

    const migrated = await run(JSON.parse(migrate.keys.get('command')!) as string[], image.workdir, containerEnv(migrate), 60_000);
    expect(migrated).toMatch(/schema up to date \((\d+) migrations, \1 applied now\)/);

    const brokerProcess = start(image.cmd, image.workdir, containerEnv(broker));
    children.push(brokerProcess.child);
    const ready = await eventually(
      () => readyLine(brokerProcess.output()) ?? (brokerProcess.child.exitCode !== null ? 'exited' : undefined),
      30_000,
      'the broker to be ready',
    );
    if (ready === 'exited') throw new Error(`the broker exited:\n${brokerProcess.output()}`);
    expect(ready.url).toBe(`http://0.0.0.0:${ports.main}`);

    await run(image.healthcheck.command, image.workdir, containerEnv(broker), image.healthcheck.timeoutMs);
    // compose's health check asks /readyz on the image's port; here the port is the mapped one.
    expect((await fetch(`http://127.0.0.1:${ports.main}/readyz`)).status).toBe(200);

    const workerCommand = JSON.parse(worker.keys.get('command')!) as string[];
    const workerProcess = start(workerCommand, image.workdir, containerEnv(worker, { BATON_ADDRESS: `127.0.0.1:${ports.main}` }));
    children.push(workerProcess.child);
    const call = async (method: string, body: unknown) => {
      const res = await fetch(`http://127.0.0.1:${ports.main}/baton.v1.Broker/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return (await res.json()) as { job: { id: string; status: string; result?: unknown } };
    };
    const { job } = await call('Enqueue', { queue: 'fibonacci', payload: { n: 90 } });
    const done = await eventually(
      async () => {
        const { job: now } = await call('Get', { id: job.id });
        return now.status === 'JOB_STATUS_COMPLETED' ? now : undefined;
      },
      20_000,
      `the example worker to run the job: ${workerProcess.output()}`,
    );
    expect(done.result).toEqual({ n: 90, value: '2880067194370816120' });

    const stopping = Date.now();
    brokerProcess.child.kill(image.stopSignal);
    expect(await brokerProcess.exited, brokerProcess.output()).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(graceMs);
    workerProcess.child.kill('SIGTERM');
    expect(await workerProcess.exited, workerProcess.output()).toBe(0);
  }, 120_000);
});
