/** The chaos scenarios (scenarios.ts) with every worker and producer on the native gRPC port (BATON_GRPC_PORT, grpc-js). */
import { describe } from 'vitest';
import { chaosScenarios } from './scenarios.ts';

describe('chaos on the grpc port', () => chaosScenarios('grpc'));
