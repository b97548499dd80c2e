// Facts both sides of the wire protocol (docs/PROTOCOL.md) share: its version, the
// frame limits, the error codes, the lock defaults and bounds, which CDP commands need a rendered
// tab and which parts of CDP answers tabmux never reads. The Rust side checks its own
// constants against this file (tests/protocol.rs), which reads the object below as
// JSON: keep it strict JSON (double quotes, no comments, no trailing commas).

export const PROTOCOL = deepFreeze({
  "version": 1,
  "maxBytes": {
    "toTabmux": 67108864,
    "toExtension": 16777216
  },
  "errors": {
    "BAD_REQUEST": "Malformed frame, unknown method, missing or wrong parameter.",
    "PROTOCOL_MISMATCH": "The peer speaks another protocol version.",
    "UNAUTHORIZED": "The peer did not prove the shared secret (`hello`), or a status request was not signed with it.",
    "TAB_BUSY": "The tab is held by another instance and the wait timed out.",
    "TAB_CLOSED": "The tab is gone.",
    "LOCK_LOST": "The caller held the tab but lost it.",
    "NOT_HELD": "The caller does not hold this tab.",
    "NOT_ATTACHABLE": "The browser does not let extensions debug this tab.",
    "NOT_FOUND": "`tabs.claim` of a tab that does not exist.",
    "CONSENT_DENIED": "The user said no to this instance using one of their tabs (or its policy is `deny`).",
    "CONSENT_TIMEOUT": "Nobody answered the question about one of the user's tabs within the claim's timeout.",
    "TAKEN_BACK": "The user took the tab back from its holder.",
    "FORBIDDEN_PAGE": "The tab shows a page no client may control (the extension detached from it).",
    "FORBIDDEN_URL": "A navigation (or a new tab) to a page no client may control.",
    "FORBIDDEN_METHOD": "A CDP command the extension does not relay.",
    "CDP_ERROR": "The browser answered the CDP command with an error.",
    "TIMEOUT": "The operation ran past its deadline.",
    "TOO_LARGE": "The frame would exceed the size limit.",
    "INTERNAL": "A bug; the message says where."
  },
  "localErrors": {
    "DISCONNECTED": "The connection closed before the reply came (made by the sender, never sent)."
  },
  "defaults": {
    "leaseMs": 60000,
    "graceMs": 5000
  },
  "limits": {
    "leaseMinMs": 1000,
    "leaseMaxMs": 600000,
    "graceMaxMs": 60000
  },
  "needsFrames": [
    "Page.captureScreenshot",
    "Input.dispatchMouseEvent",
    "Input.dispatchDragEvent",
    "Input.dispatchTouchEvent"
  ],
  "trimmed": {
    "Accessibility.getFullAXTree": {
      "nodeFields": ["ignoredReasons", "chromeRole"],
      "valueSources": ["name", "description", "value"]
    }
  }
});

function deepFreeze(o) {
  for (const v of Object.values(o)) if (v && typeof v === 'object') deepFreeze(v);
  return Object.freeze(o);
}
