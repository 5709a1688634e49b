// Enqueues fibonacci(n) and prints the result once a worker has computed it. Run:
// `npm run example:enqueue -- 1000` (n defaults to 303). BATON_ADDRESS and BATON_TOKEN as for the worker.

import { Client, JobFailedError } from '@baton/worker-sdk';

const n = Number(process.argv[2] ?? 303);
const client = new Client({
  address: process.env.BATON_ADDRESS ?? 'localhost:7700',
  token: process.env.BATON_TOKEN || undefined,
});

try {
  const job = await client.enqueue('fibonacci', { n });
  console.log(`enqueued fibonacci job ${job.id} (n=${n}), waiting for the result…`);
  const result = await client.result<{ n: number; value: string }>(job.id, { signal: AbortSignal.timeout(60_000) });
  console.log(JSON.stringify(result));
} catch (err) {
  if (err instanceof JobFailedError) console.error(`job failed: ${err.message}`);
  else console.error(err);
  process.exitCode = 1;
} finally {
  client.close();
}
