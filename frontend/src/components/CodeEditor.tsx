// Monaco from the npm package (no CDN): the editor and its language workers are bundled by Vite
// (`?worker`), and this module is only imported by the workspace, lazily.
import Editor, { DiffEditor, loader } from "@monaco-editor/react";
import * as monaco from "monaco-editor";
import EditorWorker from "monaco-editor/editor/editor.worker?worker";
import JsonWorker from "monaco-editor/language/json/json.worker?worker";
import CssWorker from "monaco-editor/language/css/css.worker?worker";
import HtmlWorker from "monaco-editor/language/html/html.worker?worker";
import TsWorker from "monaco-editor/language/typescript/ts.worker?worker";
import { useEffect, useRef } from "react";

self.MonacoEnvironment = {
  getWorker(_id: string, label: string) {
    if (label === "json") return new JsonWorker();
    if (label === "css" || label === "scss" || label === "less") return new CssWorker();
    if (label === "html" || label === "handlebars" || label === "razor") return new HtmlWorker();
    if (label === "typescript" || label === "javascript") return new TsWorker();
    return new EditorWorker();
  },
};
loader.config({ monaco });

export function languageOf(path: string): string {
  const ext = path.split(".").pop() ?? "";
  return ({ ts: "typescript", tsx: "typescript", js: "javascript", jsx: "javascript", mjs: "javascript", json: "json", css: "css", html: "html", md: "markdown" } as Record<string, string>)[ext] ?? "plaintext";
}

export interface CodeEditorProps {
  path: string;
  value: string;
  readOnly: boolean;
  dark: boolean;
  line?: number;
  onChange?: (v: string) => void;
  original?: string;
}

export default function CodeEditor({ path, value, readOnly, dark, line, onChange, original }: CodeEditorProps) {
  const ref = useRef<monaco.editor.IStandaloneCodeEditor | null>(null);
  useEffect(() => {
    if (line && ref.current) { ref.current.revealLineInCenter(line); ref.current.setPosition({ lineNumber: line, column: 1 }); }
  }, [line, path]);
  const theme = dark ? "vs-dark" : "vs";
  if (original !== undefined) {
    return <DiffEditor height="100%" original={original} modified={value} language={languageOf(path)} theme={theme} options={{ readOnly: true, renderSideBySide: false, automaticLayout: true }} />;
  }
  return (
    <Editor
      height="100%"
      path={path}
      value={value}
      language={languageOf(path)}
      theme={theme}
      onMount={(ed) => { ref.current = ed; if (line) ed.revealLineInCenter(line); }}
      onChange={(v) => onChange?.(v ?? "")}
      options={{ readOnly, minimap: { enabled: false }, fontSize: 13, automaticLayout: true, scrollBeyondLastLine: false, ariaLabel: `Code of ${path}` }}
    />
  );
}
