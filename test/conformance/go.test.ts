/** The conformance kit (suite.ts) against the Go worker. */
import { go } from './implementations.ts';
import { conformanceSuite } from './suite.ts';

conformanceSuite(go());
