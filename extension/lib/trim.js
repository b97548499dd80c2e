// Large CDP answers lose what tabmux never reads before they cross the socket: the
// accessibility tree's name sources alone are nearly half of its size. What is dropped
// is listed in protocol.js (`trimmed`), which the Rust side checks it does not read.

import { PROTOCOL } from './protocol.js';

const AX = PROTOCOL.trimmed['Accessibility.getFullAXTree'];
/** Fields of an AX node that tabmux does not read. */
const AX_NODE_DROP = AX.nodeFields;
/** AX values whose `sources` tabmux does not read. */
const AX_VALUES = AX.valueSources;

/** Returns `result` of `method` without the parts tabmux does not read (in place). */
export function trimResult(method, result) {
  if (method === 'Accessibility.getFullAXTree' && result && Array.isArray(result.nodes)) {
    for (const n of result.nodes) {
      if (!n || typeof n !== 'object') continue;
      for (const k of AX_NODE_DROP) delete n[k];
      for (const k of AX_VALUES) if (n[k] && typeof n[k] === 'object') delete n[k].sources;
    }
  }
  return result;
}
