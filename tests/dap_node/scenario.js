// The done-when scenario, driven by VS Code's own test client (@vscode/debugadapter-testsupport).
// Usage: node scenario.js PYTHON ADAPTER_SCRIPT TRACE PROGRAM LINE [PORT]
// With PORT, the client connects to a `retrograde dap --listen` server instead of starting the adapter.
// Prints one JSON line: the stop lines, the locals at the reverse-continued hit, the exit code.
'use strict';
const assert = require('assert');
const { DebugClient } = require('@vscode/debugadapter-testsupport');

async function main() {
  const [python, adapter, trace, program, lineText, portText] = process.argv.slice(2);
  const line = Number(lineText);
  const dc = new DebugClient(python, adapter, 'retrograde', { env: process.env }, true);
  dc.defaultTimeout = 60000;
  await dc.start(portText ? Number(portText) : undefined);
  try {
    const init = await dc.initializeRequest({ adapterID: 'retrograde', linesStartAt1: true, columnsStartAt1: true });
    assert.strictEqual(init.body.supportsStepBack, true);
    const lines = [];
    const stop = async (reason) => {
      const event = await dc.waitForEvent('stopped');
      assert.strictEqual(event.body.reason, reason);
      const trace = await dc.stackTraceRequest({ threadId: event.body.threadId });
      lines.push(trace.body.stackFrames[0].line);
      return trace.body.stackFrames[0];
    };
    // hitBreakpoint: launch, wait for `initialized`, set the breakpoint (verified), configurationDone,
    // and check the stop (reason breakpoint) at the line.
    await dc.hitBreakpoint({ trace }, { path: program, line, verified: true });
    const first = await dc.stackTraceRequest({ threadId: 1 });
    lines.push(first.body.stackFrames[0].line);
    await Promise.all([dc.continueRequest({ threadId: 1 }), stop('breakpoint')]);
    await Promise.all([dc.stepBackRequest({ threadId: 1 }), stop('step')]);
    const [, frame] = await Promise.all([dc.reverseContinueRequest({ threadId: 1 }), stop('breakpoint')]);
    const scopes = await dc.scopesRequest({ frameId: frame.id });
    const variables = await dc.variablesRequest({ variablesReference: scopes.body.scopes[0].variablesReference });
    const locals = {};
    for (const v of variables.body.variables) locals[v.name] = v.value;
    for (const name of Object.keys(locals)) {
      const value = await dc.evaluateRequest({ expression: name, frameId: frame.id, context: 'watch' });
      assert.strictEqual(value.body.result, locals[name]);
    }
    await dc.setBreakpointsRequest({ source: { path: program }, breakpoints: [] });
    const [, , exited] = await Promise.all([
      dc.continueRequest({ threadId: 1 }), dc.waitForEvent('terminated'), dc.waitForEvent('exited')]);
    console.log(JSON.stringify({ lines, locals, exitCode: exited.body.exitCode }));
  } finally {
    await dc.stop();
  }
}

main().catch((error) => { console.error(String(error && error.stack || error)); process.exit(1); });
