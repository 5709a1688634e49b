/** The chaos scenarios (scenarios.ts) with every worker and producer on the main port (connect-node). */
import { describe } from 'vitest';
import { chaosScenarios } from './scenarios.ts';

describe('chaos on the main port', () => chaosScenarios('main'));
