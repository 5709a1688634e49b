/** The conformance kit (suite.ts) against the TypeScript (worker-sdk) worker. */
import { typescript } from './implementations.ts';
import { conformanceSuite } from './suite.ts';

conformanceSuite(typescript());
