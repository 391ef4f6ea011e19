import { useEffect, useState, type FormEvent } from 'react'

type Note = { id: number; text: string; createdAt: string }

export default function App() {
  const [notes, setNotes] = useState<Note[]>([])
  const [text, setText] = useState('')
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    fetch('/api/notes')
      .then((res) => res.json() as Promise<{ notes: Note[] }>)
      .then((data) => setNotes(data.notes))
      .catch(() => setError('Could not reach the API.'))
  }, [])

  async function addNote(event: FormEvent) {
    event.preventDefault()
    const res = await fetch('/api/notes', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text }),
    })
    const data = (await res.json()) as { note?: Note; error?: string }
    if (data.note) {
      setNotes((current) => [...current, data.note!])
      setText('')
      setError(null)
    } else {
      setError(data.error ?? 'Something went wrong.')
    }
  }

  return (
    <main className="min-h-screen bg-slate-50 text-slate-900 flex items-center justify-center p-6">
      <section className="w-full max-w-xl rounded-2xl bg-white p-8 shadow-sm ring-1 ring-slate-200">
        <p className="text-sm font-medium text-indigo-600">Byte Platform</p>
        <h1 className="mt-2 text-3xl font-semibold tracking-tight">Your app starts here</h1>
        <p className="mt-3 text-slate-600">
          A React front end with a Worker API. The notes below come from{' '}
          <code className="rounded bg-slate-100 px-1 py-0.5 text-sm">worker/index.ts</code>.
        </p>
        <form onSubmit={addNote} className="mt-6 flex gap-2">
          <input
            value={text}
            onChange={(e) => setText(e.target.value)}
            placeholder="Write a note"
            className="flex-1 rounded-lg border border-slate-300 px-3 py-2 focus:outline-none focus:ring-2 focus:ring-indigo-400"
          />
          <button
            type="submit"
            className="rounded-lg bg-indigo-600 px-4 py-2 font-medium text-white hover:bg-indigo-500"
          >
            Add
          </button>
        </form>
        {error && <p className="mt-3 text-sm text-red-600">{error}</p>}
        <ul className="mt-6 space-y-2">
          {notes.map((note) => (
            <li key={note.id} className="rounded-lg bg-slate-50 px-3 py-2 ring-1 ring-slate-200">
              {note.text}
            </li>
          ))}
        </ul>
      </section>
    </main>
  )
}
