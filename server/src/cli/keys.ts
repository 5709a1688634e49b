import { parseArgs } from 'node:util';
import { issueApiKey, parseApiKey } from '../auth/api-key.ts';
import { type ApiKeyRecord, SCOPES, isScope } from '../domain/api-keys.ts';
import type { StoreDriver } from '../store/driver.ts';
import { type CliIo, type Command, UsageError } from './command.ts';
import { openCliDatabase } from './database.ts';

const USAGE = `baton keys create --scope producer|worker|admin [--name NAME]
       baton keys list [--all] [--json]
       baton keys revoke ID

API keys for BATON_AUTH=keys (docs/security.md). These commands use the database directly:
DATABASE_URL, or else the embedded PostgreSQL in BATON_DATA_DIR (default ./.baton/pgdata).
"create" prints the key on stdout, once; only a hash of it is stored.`;

/** `baton keys …`: creates, lists and revokes API keys, in the database itself (no broker needed). */
export const keysCommand: Command = {
  summary: 'Create, list and revoke API keys (in the database: DATABASE_URL or the embedded one)',
  usage: USAGE,
  async run(args, io) {
    const [action, ...rest] = args;
    if (action === 'create') return create(rest, io);
    if (action === 'list') return list(rest, io);
    if (action === 'revoke') return revoke(rest, io);
    throw new UsageError(action === undefined ? 'say what to do: create, list or revoke' : `unknown action "${action}" (create, list, revoke)`);
  },
};

function parse<T extends NonNullable<Parameters<typeof parseArgs>[0]>['options']>(args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function withKeys<T>(io: CliIo, work: (store: StoreDriver) => Promise<T>): Promise<T> {
  const db = await openCliDatabase(io.env);
  try {
    return await work(db.store);
  } finally {
    await db.close();
  }
}

async function create(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, { scope: { type: 'string' }, name: { type: 'string' } });
  const scope = values.scope;
  if (scope === undefined) throw new UsageError(`--scope is required (${SCOPES.join(', ')})`);
  if (!isScope(scope)) throw new UsageError(`--scope must be one of ${SCOPES.join(', ')}, got "${scope}"`);
  const name = values.name ?? '';
  if (name.length > 200 || /[\u0000-\u001f\u007f]/.test(name)) throw new UsageError('--name must be at most 200 characters, without control characters');
  const { key, record } = await withKeys(io, (store) => issueApiKey(store, { scope, name }));
  // The key alone on stdout, so `KEY=$(baton keys create --scope worker)` works; the rest on stderr.
  io.stdout(`${key}\n`);
  io.stderr(`created API key ${record.id} (scope ${record.scope}${record.name ? `, name "${record.name}"` : ''}); it is shown only this once\n`);
  return 0;
}

async function list(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, { all: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } });
  const records = await withKeys(io, (store) => store.apiKeyList({ includeRevoked: values.all }));
  if (values.json) {
    const rows = records.map(({ secretHash: _hash, ...rest }) => ({
      ...rest,
      createdAt: rest.createdAt.toISOString(),
      revokedAt: rest.revokedAt?.toISOString() ?? null,
    }));
    io.stdout(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  if (records.length === 0) {
    io.stderr(values.all ? 'no API keys\n' : 'no active API keys (--all shows revoked ones)\n');
    return 0;
  }
  io.stdout(table(records));
  return 0;
}

function table(records: ApiKeyRecord[]): string {
  const rows = [
    ['ID', 'SCOPE', 'NAME', 'CREATED', 'REVOKED'],
    ...records.map((r) => [r.id, r.scope, r.name || '-', r.createdAt.toISOString(), r.revokedAt?.toISOString() ?? '-']),
  ];
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows
    .map(
      (row) =>
        row
          .map((cell, column) => cell.padEnd(widths[column]))
          .join('  ')
          .trimEnd() + '\n',
    )
    .join('');
}

async function revoke(args: string[], io: CliIo): Promise<number> {
  const { positionals } = parse(args, {}, true);
  if (positionals.length !== 1) throw new UsageError('give exactly one key id (as shown by "baton keys list") or the key itself');
  const given = positionals[0];
  // The full key works too: its id is the part after bk_.
  const id = parseApiKey(given)?.id ?? given;
  if (!/^[0-9a-f]{12}$/.test(id)) throw new UsageError(`"${given}" is not a key id (12 hex digits, as shown by "baton keys list")`);
  const revoked = await withKeys(io, async (store) => {
    const before = await store.apiKeyGet({ id });
    return before && { before, after: (await store.apiKeyRevoke({ id }))! };
  });
  if (!revoked) {
    io.stderr(`baton keys revoke: no API key with id ${id}\n`);
    return 1;
  }
  const { before, after } = revoked;
  if (before.revokedAt) {
    io.stdout(`API key ${id} was already revoked at ${before.revokedAt.toISOString()}\n`);
  } else {
    io.stdout(
      `revoked API key ${id} (scope ${after.scope}${after.name ? `, name "${after.name}"` : ''}); ` +
        'brokers refuse it within their key cache window (BATON_AUTH_CACHE_MS, default 10 s)\n',
    );
  }
  return 0;
}
