// byte-sandbox type checker: a long-lived `tsc --noEmit -p .` for one workspace (see
// src/checker.rs). Runs in the workspace (its cwd) with the workspace's own TypeScript.
//
// Protocol, one JSON object per line: the agent writes {"id":N} to ask for a check; the answer
// is {"id":N,"output":"<tsc's plain output>","exitCode":C} once a check that read every file
// after the request arrived has finished, or {"id":N,"fallback":"<why>"} when this process
// cannot answer as tsc would (the agent then runs tsc itself). Nothing is cached across checks
// but parsed files whose text is unchanged and the builder's results for files no change can
// affect: every check re-reads tsconfig.json, the file list and every app file.
'use strict';
const path = require('path');
const readline = require('readline');

const root = process.cwd();
const tsDir = path.join(root, 'node_modules', 'typescript');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

let ts;
try {
  ts = require(tsDir);
} catch (e) {
  out({ fatal: 'cannot load node_modules/typescript: ' + e.message });
  process.exit(1);
}

// The TypeScript that was loaded: a reinstall changes it, and this process must not go on
// with the old one.
const stamp = (file) => {
  try {
    const st = require('fs').statSync(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return null;
  }
};
const tsStamp = stamp(path.join(tsDir, 'package.json'));

const formatHost = {
  getCurrentDirectory: () => root,
  getCanonicalFileName: (f) => f,
  getNewLine: () => '\n',
};

// Parsed files: app files are re-read on every check and reused only when their text is the
// same; files under node_modules (TypeScript's libs, @types) are reused while their inode,
// size and modification time are.
const files = new Map();
let versions = 0;
let builder;
let optionsKey;

function langKey(v) {
  return typeof v === 'object' && v
    ? `${v.languageVersion}|${v.impliedNodeFormat}|${v.jsDocParsingMode}`
    : String(v);
}

function makeHost(options) {
  const host = ts.createCompilerHost(options, false);
  host.getSourceFile = (fileName, lang, onError) => {
    const deps = fileName.includes('/node_modules/');
    const key = langKey(lang);
    const seen = files.get(fileName);
    let st = null;
    if (deps) {
      st = stamp(fileName);
      if (seen && st !== null && seen.stamp === st && seen.lang === key) return seen.sf;
    }
    let text;
    try {
      text = host.readFile(fileName);
    } catch (e) {
      if (onError) onError(e.message);
      text = undefined;
    }
    if (text === undefined) {
      files.delete(fileName);
      return undefined;
    }
    if (!deps && seen && seen.text === text && seen.lang === key) return seen.sf;
    const sf = ts.createSourceFile(fileName, text, lang, false);
    sf.version = String(++versions);
    files.set(fileName, { sf, text: deps ? undefined : text, stamp: st, lang: key });
    return sf;
  };
  return host;
}

function check() {
  if (stamp(path.join(tsDir, 'package.json')) !== tsStamp) {
    return { fallback: 'node_modules/typescript changed' };
  }
  let unrecoverable;
  const parseHost = Object.assign({}, ts.sys, {
    onUnRecoverableConfigFileDiagnostic: (d) => {
      unrecoverable = d;
    },
  });
  const config = ts.getParsedCommandLineOfConfigFile(
    path.join(root, 'tsconfig.json'),
    { noEmit: true },
    parseHost,
  );
  if (!config || unrecoverable) {
    return { fallback: 'tsconfig.json cannot be read here' };
  }
  if (config.projectReferences && config.projectReferences.length) {
    return { fallback: 'project references' };
  }
  const key = JSON.stringify(config.options);
  if (key !== optionsKey) {
    // Other options: nothing parsed or checked before is reusable.
    files.clear();
    builder = undefined;
    optionsKey = key;
  }
  const configDiagnostics = ts.getConfigFileParsingDiagnostics(config);
  builder = ts.createSemanticDiagnosticsBuilderProgram(
    config.fileNames,
    config.options,
    makeHost(config.options),
    builder,
    configDiagnostics,
  );
  // What tsc reports, in its order: semantic errors only when the files parse and the
  // options are valid.
  const all = builder.getConfigFileParsingDiagnostics().slice();
  const base = all.length;
  all.push(...builder.getSyntacticDiagnostics());
  if (all.length === base) {
    all.push(...builder.getOptionsDiagnostics());
    all.push(...builder.getGlobalDiagnostics());
    if (all.length === base) {
      all.push(...builder.getSemanticDiagnostics());
    }
  }
  if (config.options.declaration && all.length === base) {
    all.push(...builder.getDeclarationDiagnostics());
  }
  const diagnostics = ts.sortAndDeduplicateDiagnostics(all);
  return {
    output: ts.formatDiagnostics(diagnostics, formatHost),
    // tsc's own status with --noEmit: 0, or 2 ("diagnostics present").
    exitCode: diagnostics.length ? ts.ExitStatus.DiagnosticsPresent_OutputsGenerated : 0,
  };
}

out({ ready: true, typescript: ts.version });
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let id;
  try {
    id = JSON.parse(line).id;
  } catch {
    return;
  }
  let answer;
  try {
    answer = check();
  } catch (e) {
    answer = { fallback: 'the checker failed: ' + (e && e.message) };
  }
  out(Object.assign({ id }, answer));
});
lines.on('close', () => process.exit(0));
