// Starts `retrograde dap` (stdin/stdout) for each `retrograde` debug session.
'use strict';
const vscode = require('vscode');

function activate(context) {
  const factory = {
    createDebugAdapterDescriptor(session) {
      const configured = vscode.workspace.getConfiguration('retrograde').get('command') || 'retrograde';
      const folder = session.workspaceFolder ? session.workspaceFolder.uri.fsPath : '';
      const command = configured.replace('${workspaceFolder}', folder);
      return new vscode.DebugAdapterExecutable(command, ['dap']);
    },
  };
  context.subscriptions.push(vscode.debug.registerDebugAdapterDescriptorFactory('retrograde', factory));
}

function deactivate() {}

module.exports = { activate, deactivate };
