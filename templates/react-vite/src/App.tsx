import { useState } from 'react'

const steps = [
  'Describe what you want to build in the chat.',
  'Watch the files appear and the preview update live.',
  'Deploy it to its own address when it looks right.',
]

export default function App() {
  const [count, setCount] = useState(0)

  return (
    <main className="min-h-screen bg-slate-50 text-slate-900 flex items-center justify-center p-6">
      <section className="w-full max-w-xl rounded-2xl bg-white p-8 shadow-sm ring-1 ring-slate-200">
        <p className="text-sm font-medium text-indigo-600">Byte Platform</p>
        <h1 className="mt-2 text-3xl font-semibold tracking-tight">Your app starts here</h1>
        <p className="mt-3 text-slate-600">
          This is a React, Vite, TypeScript and Tailwind CSS starter. Edit{' '}
          <code className="rounded bg-slate-100 px-1 py-0.5 text-sm">src/App.tsx</code> and the
          preview reloads on save.
        </p>
        <ol className="mt-6 space-y-2">
          {steps.map((step, i) => (
            <li key={step} className="flex gap-3">
              <span className="flex h-6 w-6 shrink-0 items-center justify-center rounded-full bg-indigo-50 text-sm font-semibold text-indigo-700">
                {i + 1}
              </span>
              <span>{step}</span>
            </li>
          ))}
        </ol>
        <button
          type="button"
          onClick={() => setCount((c) => c + 1)}
          className="mt-8 rounded-lg bg-indigo-600 px-4 py-2 font-medium text-white hover:bg-indigo-500 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-400"
        >
          Clicked {count} {count === 1 ? 'time' : 'times'}
        </button>
      </section>
    </main>
  )
}
