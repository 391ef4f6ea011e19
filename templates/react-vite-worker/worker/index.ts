// The app's API, deployed as a Cloudflare Worker (ES module syntax).
// Requests under /api/ are answered here; everything else is the single-page app,
// served from the static assets that `vite build` writes to dist/.

export interface Env {
  // Static assets binding; in `npm run dev` Vite serves the UI instead.
  ASSETS: { fetch(request: Request): Promise<Response> }
}

type Note = { id: number; text: string; createdAt: string }

// Module-level state lives only as long as the isolate; a real app would use D1 or KV.
const notes: Note[] = [{ id: 1, text: 'Welcome! This note came from the Worker API.', createdAt: new Date(0).toISOString() }]

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  })
}

async function handleApi(request: Request, url: URL): Promise<Response> {
  if (url.pathname === '/api/health') {
    return json({ ok: true, time: new Date().toISOString() })
  }
  if (url.pathname === '/api/notes') {
    if (request.method === 'GET') return json({ notes })
    if (request.method === 'POST') {
      const body = (await request.json().catch(() => null)) as { text?: unknown } | null
      const text = typeof body?.text === 'string' ? body.text.trim() : ''
      if (!text) return json({ error: 'text is required' }, 400)
      const note = { id: notes.length + 1, text: text.slice(0, 500), createdAt: new Date().toISOString() }
      notes.push(note)
      return json({ note }, 201)
    }
    return json({ error: 'method not allowed' }, 405)
  }
  return json({ error: 'not found' }, 404)
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url)
    if (url.pathname.startsWith('/api/')) return handleApi(request, url)
    return env.ASSETS.fetch(request)
  },
}
