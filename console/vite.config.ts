// Builds the console into dist/console/ (served by the metalplane server at /ui/). Run by `npm run build:console`,
// which `npm ci` runs through the root package's prepare script.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/ui/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    // The graph (xyflow + elkjs) is a lazy chunk; the entry stays small.
    chunkSizeWarningLimit: 600,
    reportCompressedSize: true,
  },
});
