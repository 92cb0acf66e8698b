/** Finds Node-only constructs in a source text (comments ignored). */
export function findNodeOnly(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
  const found: string[] = [];
  if (/(from\s+|import\s*\(\s*|require\s*\(\s*)['"]node:/.test(code) || /^\s*import\s+['"]node:/m.test(code)) found.push('node:* import');
  if (/\bBuffer\b/.test(code)) found.push('Buffer');
  if (/(?<![.\w])process\s*\./.test(code) || /(?<![.\w])process\s*\[/.test(code)) found.push('process');
  return found;
}
