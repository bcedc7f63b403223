import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.turbo/**', '.guests/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly', performance: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      // Bit twiddling is the daily business of an emulator.
      'no-bitwise': 'off',
    },
  },
  {
    // The interpreter's constants are enums: esbuild writes each use as a literal, where V8 would load an
    // `as const` object's property, with a map check, every time (about a fifth of the i386 boot's time).
    files: ['packages/x86-core/src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "TSAsExpression[typeAnnotation.typeName.name='const'][expression.type='ObjectExpression']",
          message: 'Use an enum for named constants in x86-core: esbuild inlines enum members as literals.',
        },
      ],
    },
  },
);
