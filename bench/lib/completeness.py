"""Checks that a snapshot names every interactive element (with a ref) and every heading
that the DOM inventory (inventory.js) lists."""

import re

_WS = re.compile(r"\s+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')

REF_PATTERNS = {
    "tabmux": re.compile(r"\[e\d+\]"),
    "playwright": re.compile(r"\[ref=[a-z0-9]+\]"),
    "cdt": re.compile(r"uid=\d+_\d+"),
}
HEADING_PATTERNS = {
    "tabmux": re.compile(r"^\s*(?:- |\d+\. )?h[1-6](?: |$)"),
    "playwright": re.compile(r"\bheading\b"),
    "cdt": re.compile(r"\bheading\b"),
}
# The role words a snapshot would use for an unnamed control.
TAG_ROLES = {
    "a": ("link",), "button": ("button",), "select": ("combobox", "listbox"), "textarea": ("textbox",),
    "summary": ("disclosuretriangle", "summary"),
}
INPUT_ROLES = {
    "checkbox": ("checkbox",), "radio": ("radio",), "range": ("slider",), "number": ("spinbutton",),
    "date": ("date",), "search": ("searchbox", "textbox"), "button": ("button",), "submit": ("button",),
}
LOOSE_MIN = 12  # shorter names must match exactly


def key(s):
    # Whitespace-free and lower case: accessible names and innerText differ in spacing
    # (e.g. <wbr>, line breaks), not in letters.
    return _WS.sub("", s.replace('\\"', '"').replace("\\n", " ")).lower()


def _role_words(it):
    tag = it.get("tag", "")
    if tag == "input":
        return INPUT_ROLES.get(it.get("type", ""), ("textbox",))
    return TAG_ROLES.get(tag, ((it.get("role") or "").lower(),))


def check(kind, snapshot, items):
    """{interactive: {found, total, missing}, heading: {...}, found, total}.

    Items with `scriptFocus` (a container with tabindex=-1 and no widget role: a focus
    target for scripts and skip links, not a control) are reported apart and not required."""
    ref_re = REF_PATTERNS[kind]
    head_re = HEADING_PATTERNS[kind]
    lines = snapshot.splitlines()
    names, heads = [], []
    for l in lines:
        m = _QUOTED.search(l)
        names.append(key(m.group(1)) if m else "")
        heads.append(key(l[: m.start()]) if m else key(l))
    out = {}
    for k in ("interactive", "heading", "focus"):
        if k == "focus":
            want = [i for i in items if i.get("scriptFocus")]
            ok_line = [bool(ref_re.search(l)) for l in lines]
        elif k == "interactive":
            want = [i for i in items if i["kind"] == k and not i.get("scriptFocus")]
            ok_line = [bool(ref_re.search(l)) for l in lines]
        else:
            want = [i for i in items if i["kind"] == k]
            ok_line = [bool(head_re.search(l)) for l in lines]
        cands = [i for i, ok in enumerate(ok_line) if ok]
        used = [False] * len(lines)
        p = 0
        missing = []
        for it in want:
            ks = [x for x in (key(n) for n in it["names"]) if x]
            roles = [r for r in _role_words(it) if r]

            def exact(j):
                return names[j] in ks or (not ks and names[j] == "" and any(r in heads[j] for r in roles))

            def loose(j):
                n = names[j]
                return any(
                    len(c) >= LOOSE_MIN and len(n) >= LOOSE_MIN and (c in n or n in c) for c in ks
                )

            found = None
            for test in (exact, loose):
                for rng in (range(p, min(len(cands), p + 400)), range(len(cands))):
                    for q in rng:
                        if not used[cands[q]] and test(cands[q]):
                            found = q
                            break
                    if found is not None:
                        break
                if found is not None:
                    break
            if found is None:
                missing.append(it)
            else:
                used[cands[found]] = True
                p = found + 1
        out[k] = {"found": len(want) - len(missing), "total": len(want), "missing": missing}
    out["found"] = out["interactive"]["found"] + out["heading"]["found"]
    out["total"] = out["interactive"]["total"] + out["heading"]["total"]
    return out


def recheck(out_dir):
    """Re-runs the check on the snapshots a run saved (bench/out/snapshots)."""
    import json
    import os

    inv = json.load(open(os.path.join(out_dir, "inventory.json")))
    kinds = {"tabmux": "tabmux", "Playwright": "playwright", "chrome-devtools": "cdt"}
    for d in sorted(os.listdir(os.path.join(out_dir, "snapshots"))):
        kind = next(v for k, v in kinds.items() if d.startswith(k))
        for page, items in inv.items():
            f = os.path.join(out_dir, "snapshots", d, f"{page}.txt")
            if not os.path.exists(f):
                continue
            c = check(kind, open(f).read(), items)
            print(f"{d:24} {page:8} {c['found']}/{c['total']}  focus targets {c['focus']['found']}/{c['focus']['total']}")
            for k in ("interactive", "heading"):
                for m in c[k]["missing"][:10]:
                    print(f"    missing {k} <{m['tag']}> {m.get('role', '')} {[n[:70] for n in m['names'][:3]]}")


if __name__ == "__main__":
    import sys

    import os

    recheck(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "out"))
