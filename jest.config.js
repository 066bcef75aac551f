// Two projects. `unit`: no Docker daemon, no registry, no qemu, no bundle runs, under a minute
// (`npm run test:unit`). `integration`: the real daemon, registry, git servers and the committed
// bundles; its global setup brings the services up (`scripts/services.sh up`, idempotent).
// A new test that needs Docker is named `*.docker.test.ts`; an existing one is listed here.
const INTEGRATION_FILES = [
  'bundle.test.ts',
  'cli/portability.test.ts',
  'e2e/action.test.ts',
  'e2e/cross-cpu.test.ts',
  'e2e/demo.test.ts',
  'e2e/rebuild-attestations.test.ts',
  'e2e/isa.test.ts',
  'examples/tiny-model.test.ts',
  'examples/torch-cnn.test.ts',
  'faults/action-faults.test.ts',
  'faults/cache.test.ts',
  'hardening/cli-signals.test.ts',
  'hardening/container.test.ts',
  'hardening/correctness.test.ts',
  'hardening/inert-text.test.ts',
  'hardening/network.test.ts',
  'package.test.ts',
  'reproduce/docker.test.ts',
  'reproduce/reproduce.test.ts',
  'tlog/action.test.ts',
  'tlog/go-interop.test.ts'
]
const INTEGRATION_PATTERN = '**/*.docker.test.ts'

const common = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }]
  }
}

const escape = text => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** @type {import('jest').Config} */
export default {
  // A global option: Jest ignores it inside a project.
  testTimeout: 120000,
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/scripts/jest-summary-reporter.cjs'],
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: [
        '/node_modules/',
        '\\.docker\\.test\\.ts$',
        ...INTEGRATION_FILES.map(file => `/__tests__/${escape(file)}$`)
      ]
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: [...INTEGRATION_FILES.map(file => `**/__tests__/${file}`), INTEGRATION_PATTERN],
      globalSetup: '<rootDir>/scripts/jest-services.mjs'
    }
  ]
}
