/** The conformance kit (suite.ts) against the Python worker. */
import { python } from './implementations.ts';
import { conformanceSuite } from './suite.ts';

conformanceSuite(python());
