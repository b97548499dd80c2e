// The CDP commands the extension relays for a held tab: exactly the ones tabmux sends
// on a tab (src/browser, src/mcp, src/snapshot). Anything else is refused with
// FORBIDDEN_METHOD. tabmux's tests read this file and fail when it uses a command
// that is not listed here (src/link/extension.rs, `cdp_methods_in_sync`): add it here,
// after checking that it cannot reach beyond its tab.
//
// Deliberately absent: Target.* other than setAutoAttach (other tabs and targets),
// Browser.* and SystemInfo.* (the whole browser), Storage.* and Network.getAllCookies /
// getCookies (every site's cookies). Page.navigate's URL is checked too (lib/confine.js).

export const CDP_METHODS = Object.freeze([
  'Accessibility.getFullAXTree',
  'DOM.describeNode',
  'DOM.getBoxModel',
  'DOM.getContentQuads',
  'DOM.getFrameOwner',
  'DOM.resolveNode',
  'DOM.setFileInputFiles',
  'DOMSnapshot.captureSnapshot',
  'Emulation.setDeviceMetricsOverride',
  'Emulation.setFocusEmulationEnabled',
  'Input.dispatchKeyEvent',
  'Input.dispatchMouseEvent',
  'Input.insertText',
  'Log.enable',
  'Network.enable',
  'Page.captureScreenshot',
  'Page.createIsolatedWorld',
  'Page.enable',
  'Page.getFrameTree',
  'Page.getLayoutMetrics',
  'Page.getNavigationHistory',
  'Page.handleJavaScriptDialog',
  'Page.navigate',
  'Page.navigateToHistoryEntry',
  'Page.reload',
  'Page.setDocumentContent',
  'Page.setInterceptFileChooserDialog',
  'Page.setLifecycleEventsEnabled',
  'Page.stopLoading',
  'Runtime.callFunctionOn',
  'Runtime.enable',
  'Runtime.evaluate',
  'Runtime.releaseObject',
  'Runtime.runIfWaitingForDebugger',
  'Target.setAutoAttach',
]);
