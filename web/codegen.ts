// Types for every operation in src/, generated from the API's contract
// (schema/schema.graphql, written by the API's schema_contract test). A schema change
// that breaks an operation fails `npm run codegen`, and so the build.
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../schema/schema.graphql',
  documents: ['src/**/*.{ts,tsx}', '!src/gql/**/*'],
  ignoreNoDocuments: false,
  generates: {
    './src/gql/': {
      preset: 'client',
      config: {
        // Money and quantities stay exact strings: never a float on the way in.
        scalars: { Decimal: 'string', DateTime: 'string', JSON: 'unknown' },
        enumsAsTypes: true,
        useTypeImports: true,
        strictScalars: true,
      },
      presetConfig: { fragmentMasking: false },
    },
  },
};

export default config;
