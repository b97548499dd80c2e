// Drives tabmux with the official MCP TypeScript SDK client, the way MCP hosts built
// on it do: lists the tools, navigates, waits with progress, cancels a long wait.
// Prints one JSON report on stdout for tests/ts_client.rs to check.
//
// Environment: TABMUX_BIN (the binary), FIXTURE_URL (a page to open); tabmux's own
// variables (TABMUX_STATE_DIR, ...) pass through.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const bin = process.env.TABMUX_BIN;
const page = process.env.FIXTURE_URL;
if (!bin || !page) {
  console.error('set TABMUX_BIN and FIXTURE_URL');
  process.exit(2);
}

const transport = new StdioClientTransport({
  command: bin,
  args: ['--launch'],
  env: { ...process.env },
  stderr: 'inherit',
});
const client = new Client({ name: 'ts-sdk-test', version: '1.0.0' });
await client.connect(transport);

const report = {};
const text = (r) => (r.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');

const { tools } = await client.listTools();
report.tools = tools.map((t) => ({ name: t.name, title: t.title ?? t.annotations?.title ?? null }));

const nav = await client.callTool({ name: 'browser_navigate', arguments: { url: page } });
report.navigate = { isError: !!nav.isError, text: text(nav) };

// Progress: a text that appears after 2.5 s.
await client.callTool({
  name: 'browser_evaluate',
  arguments: { function: "() => { setTimeout(() => document.body.append('Late text'), 2500); return 1 }" },
});
const progress = [];
const started = Date.now();
const waited = await client.callTool(
  { name: 'browser_wait_for', arguments: { text: 'Late text' } },
  undefined,
  { onprogress: (p) => progress.push({ atMs: Date.now() - started, progress: p.progress, message: p.message ?? null }) },
);
report.progress = { isError: !!waited.isError, text: text(waited), notifications: progress };

// Cancellation: a 20 s wait aborted after 1 s; then the next call on the tab.
const abort = new AbortController();
const cancelledAt = Date.now();
setTimeout(() => abort.abort('the user pressed Esc'), 1000);
let cancelError = null;
try {
  await client.callTool(
    { name: 'browser_wait_for', arguments: { text: 'never appears', timeout: 20 } },
    undefined,
    { signal: abort.signal },
  );
} catch (e) {
  cancelError = String(e && e.message ? e.message : e);
}
const abortedMs = Date.now() - cancelledAt;
const next = Date.now();
const snap = await client.callTool({ name: 'browser_snapshot', arguments: {} });
report.cancel = {
  error: cancelError,
  abortedMs,
  nextMs: Date.now() - next,
  nextIsError: !!snap.isError,
  nextText: text(snap).slice(0, 2000),
};

await client.close();
process.stdout.write(JSON.stringify(report) + '\n');
