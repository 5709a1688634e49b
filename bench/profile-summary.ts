/**
 * Summarises a V8 CPU profile (`npm run bench -- --profile DIR` writes one for Baton's broker):
 * where the broker's CPU time went, by package or source folder and by function.
 * Run: `node bench/profile-summary.ts DIR/CPU.….cpuprofile [top]`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bench/profile-summary.ts FILE.cpuprofile [top]\n');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

const ROOT = path.resolve(import.meta.dirname, '..');
/** "pg-protocol", "server/src/store", "node:internal", "(garbage collector)", … */
function area(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const local = url.replace(/^file:\/\//, '');
  return path.relative(ROOT, path.dirname(local)) || local;
}

const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const busy = [...selfUs].filter(([id]) => byId.get(id)!.callFrame.functionName !== '(idle)').reduce((a, [, t]) => a + t, 0);
const add = (map: Map<string, number>, key: string, t: number) => map.set(key, (map.get(key) ?? 0) + t);
const areas = new Map<string, number>();
const functions = new Map<string, number>();
for (const [id, t] of selfUs) {
  const node = byId.get(id)!;
  if (node.callFrame.functionName === '(idle)') continue;
  add(areas, area(node), t);
  const where = node.callFrame.url ? `${path.basename(node.callFrame.url)}:${node.callFrame.lineNumber + 1}` : '';
  add(functions, `${node.callFrame.functionName || '(anonymous)'} ${where} [${area(node)}]`, t);
}
const table = (title: string, map: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [key, t] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((t / busy) * 100).toFixed(1).padStart(6)} %  ${(t / 1000).toFixed(0).padStart(7)} ms  ${key}`);
  }
};
console.log(`profile: ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(1)} s (${((busy / total) * 100).toFixed(0)} %)`);
table('self time by package or folder (share of busy time)', areas);
table('self time by function', functions);
