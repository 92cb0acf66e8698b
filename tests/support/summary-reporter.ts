/**
 * Ends a run with the plain line CI reads: `N passed, N failed, N skipped`.
 * A test file that fails to load, and an unhandled error, each count as a failure.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  private line = '';

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>) {
    let passed = 0, failed = 0, skipped = 0;
    for (const mod of modules) {
      let tests = 0;
      for (const test of mod.children.allTests()) {
        tests++;
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // A failing beforeAll/afterAll marks its tests skipped: count the hook's suite as failed.
      for (const suite of mod.children.allSuites()) if (suite.errors().length > 0) failed++;
      if (mod.errors().length > 0) failed += mod.errors().length;
      else if (tests === 0 && mod.state() === 'failed') failed++;
    }
    failed += unhandledErrors.length;
    this.line = `${passed} passed, ${failed} failed, ${skipped} skipped`;
  }

  // The default reporter prints its own summary in onFinished; ours must come after it, last.
  onFinished() {
    if (this.line) process.stdout.write(`\n${this.line}\n`);
  }
}
