/**
 * Measures what each payload encoding costs the broker per job: JSON text carried as `bytes`
 * (what the Lease stream and SDKs use) against `google.protobuf.Value` (what grpcurl and curl users
 * write). Both sides of the trip are counted: decoding the request and turning the payload into the
 * JSON text PostgreSQL stores, and the reverse for a job handed out. Run: `node bench/payload-encoding.ts`.
 */
import { create, fromBinary, fromJson, toBinary, toJson, type JsonValue } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { EnqueueRequestSchema } from '@baton/worker-sdk/gen/broker';

function payload(bytes: number): JsonValue {
  const items = [];
  for (let i = 0; JSON.stringify(items).length < bytes; i++) items.push({ id: i, name: `item-${i}`, price: i * 1.5, tags: ['a', 'b'] });
  return { order: 42, customer: { id: 'c-1', email: 'x@example.com' }, items };
}

function time(label: string, iterations: number, work: () => void): number {
  for (let i = 0; i < iterations / 10; i++) work();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) work();
  const perOp = Number(process.hrtime.bigint() - start) / iterations / 1000;
  console.log(`${label.padEnd(48)} ${perOp.toFixed(2).padStart(8)} µs/job`);
  return perOp;
}

for (const size of [100, 1024, 16 * 1024]) {
  const value = payload(size);
  const text = JSON.stringify(value);
  const iterations = size > 10_000 ? 2_000 : 20_000;
  console.log(`\npayload of ${text.length} bytes as JSON`);
  const asBytes = toBinary(EnqueueRequestSchema, create(EnqueueRequestSchema, { queue: 'q', payloadJson: new TextEncoder().encode(text) }));
  const asValue = toBinary(EnqueueRequestSchema, create(EnqueueRequestSchema, { queue: 'q', payload: fromJson(ValueSchema, value) }));
  const b = time('bytes: decode request → JSON text (validated)', iterations, () => {
    const request = fromBinary(EnqueueRequestSchema, asBytes);
    JSON.parse(new TextDecoder().decode(request.payloadJson));
  });
  const v = time('Value: decode request → JSON text', iterations, () => {
    const request = fromBinary(EnqueueRequestSchema, asValue);
    JSON.stringify(toJson(ValueSchema, request.payload!));
  });
  console.log(`${'Value costs'.padEnd(48)} ${(v / b).toFixed(1).padStart(8)} × bytes; wire ${asValue.length} vs ${asBytes.length} bytes`);
}
