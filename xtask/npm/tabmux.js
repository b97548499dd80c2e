#!/usr/bin/env node
// The `tabmux` command of the npm package: runs the tabmux binary built for this
// platform, which npm installed as one of the optional dependencies
// (`@tabmux/<platform>-<arch>`). stdin, stdout and stderr are the binary's own; its
// exit code is this command's, and signals sent to this command reach it.
'use strict';

const { spawn } = require('node:child_process');

const SUPPORTED = __SUPPORTED__;
const key = `${process.platform}-${process.arch}`;
const pkg = `@tabmux/${key}`;
const exe = process.platform === 'win32' ? 'tabmux.exe' : 'tabmux';

function binaryPath() {
  if (process.env.TABMUX_BINARY) return process.env.TABMUX_BINARY;
  try {
    return require.resolve(`${pkg}/bin/${exe}`);
  } catch {
    const why = SUPPORTED.includes(key)
      ? `the package ${pkg} is not installed (was the install run with --omit=optional or --no-optional?). Install again with optional dependencies`
      : `tabmux has no prebuilt binary for ${key} (there are: ${SUPPORTED.join(', ')}). Build it from source with Rust: cargo install tabmux`;
    process.stderr.write(`tabmux: cannot start: ${why}.\n`);
    process.exit(1);
  }
}

const child = spawn(binaryPath(), process.argv.slice(2), { stdio: 'inherit', windowsHide: true });

// On Windows the console sends Ctrl-C to tabmux as well, and killing it from here
// would stop it hard: there the launcher only waits for it to exit.
const forwarded =
  process.platform === 'win32' ? ['SIGINT'] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
const relay = (signal) => {
  if (process.platform === 'win32') return;
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
};
for (const s of forwarded) process.on(s, relay);

child.on('error', (e) => {
  process.stderr.write(`tabmux: cannot start ${child.spawnfile}: ${e.message}\n`);
  process.exit(1);
});

child.on('exit', (code, signal) => {
  for (const s of forwarded) process.off(s, relay);
  if (signal) {
    // End the same way the binary did.
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
