import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'
import tailwindcss from '@tailwindcss/vite'

// The sandbox runs `vite --port <port> --host 127.0.0.1 --strictPort` behind a proxy
// that serves the app at the root of its own hostname, so the default base `/` is right.
export default defineConfig({
  plugins: [react(), tailwindcss()],
  server: {
    // Only these hosts reach the dev server (no DNS rebinding): byte-sandbox's preview proxy
    // sends `Host: 127.0.0.1:<port>` (loopback IPs are always allowed) and keeps the preview
    // hostname, <app>.<PREVIEW_DOMAIN> (`preview.localhost` in development), in
    // X-Forwarded-Host; that domain is the only name allowed besides.
    allowedHosts: ['.preview.localhost'],
  },
})
