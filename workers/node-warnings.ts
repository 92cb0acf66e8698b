/**
 * The AWS SDK is pinned to a release that supports Node 20 (see package.json); it still warns on
 * every process start that later releases will not. Drop that one warning, keep all others.
 */
export function quietPinnedSdkWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    if (String(warning).startsWith('NodeVersionSupportWarning')) return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
