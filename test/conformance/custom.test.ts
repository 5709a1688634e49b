/**
 * The conformance kit (suite.ts) against any worker, given as a command line, on both of the
 * broker's ports (BATON_ADDRESS names the main port in one run, the native gRPC port in the other):
 *   CONFORMANCE_WORKER='/path/to/worker --flag' npx vitest run test/conformance/custom.test.ts
 */
import { describe, it } from 'vitest';
import { custom } from './implementations.ts';
import { conformanceSuite } from './suite.ts';

const impl = custom();
if (impl) conformanceSuite(impl);
else describe.skip('a worker given by CONFORMANCE_WORKER (not set)', () => it('passes the kit'));
