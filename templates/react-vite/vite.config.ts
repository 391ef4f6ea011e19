import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'
import tailwindcss from '@tailwindcss/vite'

// The sandbox runs `vite --port <port> --host 127.0.0.1 --strictPort` behind a proxy
// that serves the app at the root of its own hostname, so the default base `/` is right.
export default defineConfig({
  plugins: [react(), tailwindcss()],
  server: {
    // The preview is reached through the platform's proxy under another hostname.
    allowedHosts: true,
  },
})
