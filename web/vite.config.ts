/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run dev` proxies the API of a `coinfold serve` (or `coinfold demo`) on :8080.
const api = process.env.COINFOLD_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    host: '127.0.0.1',
    proxy: {
      '/graphql/ws': { target: api.replace(/^http/, 'ws'), ws: true },
      '/graphql': { target: api },
    },
  },
  build: {
    target: 'es2022',
    sourcemap: true,
    rollupOptions: {
      output: {
        // The chart libraries load with the pages that draw them.
        manualChunks: {
          react: ['react', 'react-dom', 'react-router-dom'],
          graphql: ['urql', 'graphql', 'graphql-ws'],
        },
      },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
  },
});
