// Prints one plain closing line, `tests: N passed, N failed, N skipped`, after Jest's own summary.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests } = results
    console.log(
      `tests: ${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests + numTodoTests} skipped`
    )
  }
}

module.exports = SummaryReporter
