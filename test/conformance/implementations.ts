/**
 * The worker implementations the conformance kit runs, and how to start each: a command line, an
 * optional build step, and a check that its toolchain is present. A language whose toolchain is
 * missing is skipped with the reason, except in CI (`CI` set), where that is a failure.
 *
 * Another implementation joins without code changes:
 *   CONFORMANCE_WORKER='java -jar my-worker.jar' npx vitest run test/conformance/custom.test.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
const PYTHON = '/usr/bin/python3';

export interface Implementation {
  name: string;
  /** Why it cannot run here, or null when it can. */
  missing: string | null;
  /** Builds what it needs and returns the command line (program and arguments), run from the repository root. */
  prepare(): string[];
}

function pythonMissing(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} not found (apt-get install python3-grpcio python3-protobuf)`;
  if (probe.status !== 0) return `${PYTHON} cannot import grpc and protobuf (apt-get install python3-grpcio python3-protobuf)`;
  return null;
}

function goMissing(): string | null {
  const probe = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'go not found (apt-get install golang-go)';
  for (const pkg of ['google.golang.org/grpc', 'google.golang.org/protobuf', 'github.com/golang/protobuf/proto']) {
    if (!existsSync(`/usr/share/gocode/src/${pkg}`)) {
      return `/usr/share/gocode lacks ${pkg} (apt-get install golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev)`;
    }
  }
  return null;
}

/** Builds the Go commands into clients/go/bin with clients/go/build.sh (Go caches the compile across runs). */
function buildGo(): string[] {
  const built = spawnSync(path.join(ROOT, 'clients/go/build.sh'), [], { cwd: ROOT, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`clients/go/build.sh failed:\n${built.stdout}${built.stderr}`);
  return [path.join(ROOT, 'clients/go/bin/conformance-worker')];
}

export function typescript(): Implementation {
  return { name: 'typescript', missing: null, prepare: () => [process.execPath, 'test/conformance/ts-worker.ts'] };
}

export function python(): Implementation {
  return { name: 'python', missing: pythonMissing(), prepare: () => [PYTHON, 'clients/python/conformance_worker.py'] };
}

export function go(): Implementation {
  return { name: 'go', missing: goMissing(), prepare: buildGo };
}

/** The command line in CONFORMANCE_WORKER (split on spaces), if any. */
export function custom(): Implementation | null {
  const command = process.env.CONFORMANCE_WORKER?.trim();
  return command ? { name: `custom (${command})`, missing: null, prepare: () => command.split(/\s+/) } : null;
}
