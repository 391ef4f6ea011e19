/// <reference types="vitest/config" />
// The web app's build. `vite build` writes frontend/dist (served by the Worker's ASSETS binding);
// `vite` (make web) serves it with HMR on :5173 and proxies /api, WebSocket included, to the
// Worker on :8787 (BYTE_API to point elsewhere).
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

const api = process.env.BYTE_API ?? "http://localhost:8787";

export default defineConfig({
  plugins: [react(), tailwindcss()],
  server: {
    port: 5173,
    strictPort: true,
    proxy: { "/api": { target: api, changeOrigin: false, ws: true } },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    // Monaco is one large lazy chunk by design; everything the first page needs stays small
    // (scripts/sizes.mjs enforces the initial-JS budget).
    chunkSizeWarningLimit: 4096,
  },
  worker: { format: "es" },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
