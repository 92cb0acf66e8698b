/**
 * Where CLI commands write: results on stdout (text, or one JSON document with `--json`), progress
 * on stderr so that `bionic saga ls --json | jq` stays clean. Colours come from picocolors, which
 * turns them off when stdout is not a terminal or `NO_COLOR` is set.
 */
import pc from 'picocolors';

export interface Output {
  /** True with `--json`: text lines are dropped and {@link Output.json} prints the result. */
  readonly jsonMode: boolean;
  /** A line of the text result. */
  line(text: string): void;
  /** A progress or context message (stderr, dimmed). */
  progress(text: string): void;
  /** The JSON result (only in JSON mode). */
  json(value: unknown): void;
}

export interface OutputStreams { stdout: (s: string) => void; stderr: (s: string) => void }

const processStreams: OutputStreams = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
};

export function createOutput(opts: { json?: boolean; streams?: OutputStreams } = {}): Output {
  const { stdout, stderr } = opts.streams ?? processStreams;
  const jsonMode = Boolean(opts.json);
  return {
    jsonMode,
    line: (text) => { if (!jsonMode) stdout(text + '\n'); },
    progress: (text) => stderr(pc.dim(text) + '\n'),
    json: (value) => { if (jsonMode) stdout(JSON.stringify(value, null, 2) + '\n'); },
  };
}
