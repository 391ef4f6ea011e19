import { defineConfig, type Plugin, type ViteDevServer } from 'vite'
import react from '@vitejs/plugin-react'
import tailwindcss from '@tailwindcss/vite'
import type { IncomingMessage, ServerResponse } from 'node:http'

// Serves /api/* in `npm run dev` by loading worker/index.ts through Vite (so edits apply
// on the next request) and calling its fetch handler with a web-standard Request.
function workerApi(): Plugin {
  return {
    name: 'byte:worker-api',
    configureServer(server: ViteDevServer) {
      server.middlewares.use((req, res, next) => {
        if (!req.url?.startsWith('/api/')) return next()
        handle(server, req, res).catch(next)
      })
    },
  }
}

async function handle(server: ViteDevServer, req: IncomingMessage, res: ServerResponse) {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const headers = new Headers()
  for (const [key, value] of Object.entries(req.headers)) {
    if (typeof value === 'string') headers.set(key, value)
    else if (Array.isArray(value)) for (const v of value) headers.append(key, v)
  }
  const method = req.method ?? 'GET'
  const request = new Request(new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`), {
    method,
    headers,
    body: method === 'GET' || method === 'HEAD' ? undefined : Buffer.concat(chunks),
  })
  const mod = await server.ssrLoadModule('/worker/index.ts')
  const env = { ASSETS: { fetch: async () => new Response('Not found', { status: 404 }) } }
  const response: Response = await mod.default.fetch(request, env)
  res.statusCode = response.status
  response.headers.forEach((value, key) => res.setHeader(key, value))
  res.end(Buffer.from(await response.arrayBuffer()))
}

// The sandbox runs `vite --port <port> --host 127.0.0.1 --strictPort` behind a proxy
// that serves the app at the root of its own hostname, so the default base `/` is right.
export default defineConfig({
  plugins: [react(), tailwindcss(), workerApi()],
  server: {
    // Only these hosts reach the dev server (no DNS rebinding): byte-sandbox's preview proxy
    // sends `Host: 127.0.0.1:<port>` (loopback IPs are always allowed) and keeps the preview
    // hostname, <app>.<PREVIEW_DOMAIN> (`preview.localhost` in development), in
    // X-Forwarded-Host; that domain is the only name allowed besides.
    allowedHosts: ['.preview.localhost'],
  },
})
