//! Key definitions for CDP `Input.dispatchKeyEvent`: `key`, `code`, the Windows virtual
//! key code and the text a key produces, so pages see the same events as from a real
//! keyboard.

use crate::error::{Error, Result};

/// Modifier bits of CDP input events.
pub const ALT: i64 = 1;
pub const CONTROL: i64 = 2;
pub const META: i64 = 4;
pub const SHIFT: i64 = 8;

#[derive(Debug, Clone, PartialEq)]
pub struct KeyDef {
    pub key: String,
    pub code: String,
    pub key_code: i64,
    /// The text the key types (None for keys that type nothing).
    pub text: Option<String>,
    /// A location of 1 for left modifiers, 3 for the keypad.
    pub location: i64,
}

const NAMED: &[(&str, &str, i64, Option<&str>)] = &[
    ("Enter", "Enter", 13, Some("\r")),
    ("Tab", "Tab", 9, None),
    ("Backspace", "Backspace", 8, None),
    ("Delete", "Delete", 46, None),
    ("Escape", "Escape", 27, None),
    ("ArrowUp", "ArrowUp", 38, None),
    ("ArrowDown", "ArrowDown", 40, None),
    ("ArrowLeft", "ArrowLeft", 37, None),
    ("ArrowRight", "ArrowRight", 39, None),
    ("Home", "Home", 36, None),
    ("End", "End", 35, None),
    ("PageUp", "PageUp", 33, None),
    ("PageDown", "PageDown", 34, None),
    ("Insert", "Insert", 45, None),
    ("Shift", "ShiftLeft", 16, None),
    ("Control", "ControlLeft", 17, None),
    ("Alt", "AltLeft", 18, None),
    ("Meta", "MetaLeft", 91, None),
    ("CapsLock", "CapsLock", 20, None),
    ("ContextMenu", "ContextMenu", 93, None),
    ("Pause", "Pause", 19, None),
    ("PrintScreen", "PrintScreen", 44, None),
    ("ScrollLock", "ScrollLock", 145, None),
    ("NumLock", "NumLock", 144, None),
    (" ", "Space", 32, Some(" ")),
];

const ALIASES: &[(&str, &str)] = &[
    ("Return", "Enter"),
    ("Esc", "Escape"),
    ("Space", " "),
    ("Spacebar", " "),
    ("Up", "ArrowUp"),
    ("Down", "ArrowDown"),
    ("Left", "ArrowLeft"),
    ("Right", "ArrowRight"),
    ("Del", "Delete"),
    ("Ctrl", "Control"),
    ("Control", "Control"),
    ("Cmd", "Meta"),
    ("Command", "Meta"),
    ("Win", "Meta"),
    ("Option", "Alt"),
    ("ControlOrMeta", "ControlOrMeta"),
];

/// Punctuation on a US layout: (unshifted, shifted, code, key code).
const PUNCT: &[(char, char, &str, i64)] = &[
    ('-', '_', "Minus", 189),
    ('=', '+', "Equal", 187),
    ('[', '{', "BracketLeft", 219),
    (']', '}', "BracketRight", 221),
    ('\\', '|', "Backslash", 220),
    (';', ':', "Semicolon", 186),
    ('\'', '"', "Quote", 222),
    (',', '<', "Comma", 188),
    ('.', '>', "Period", 190),
    ('/', '?', "Slash", 191),
    ('`', '~', "Backquote", 192),
];

const SHIFTED_DIGITS: &[char] = &[')', '!', '@', '#', '$', '%', '^', '&', '*', '('];

pub fn canonical(name: &str) -> &str {
    for (alias, to) in ALIASES {
        if alias.eq_ignore_ascii_case(name) {
            return to;
        }
    }
    name
}

/// The definition of one key by name (`Enter`, `ArrowLeft`, `F5`, `a`, `A`, `7`, `?`) and
/// whether Shift is part of producing it.
pub fn key_def(name: &str) -> Result<(KeyDef, bool)> {
    let name = canonical(name);
    for (key, code, kc, text) in NAMED {
        if key.eq_ignore_ascii_case(name) {
            let location = if matches!(*key, "Shift" | "Control" | "Alt" | "Meta") {
                1
            } else {
                0
            };
            return Ok((
                KeyDef {
                    key: key.to_string(),
                    code: code.to_string(),
                    key_code: *kc,
                    text: text.map(str::to_string),
                    location,
                },
                false,
            ));
        }
    }
    if let Some(n) = name.strip_prefix(['F', 'f'])
        && let Ok(n) = n.parse::<i64>()
        && (1..=24).contains(&n)
    {
        return Ok((
            KeyDef {
                key: format!("F{n}"),
                code: format!("F{n}"),
                key_code: 111 + n,
                text: None,
                location: 0,
            },
            false,
        ));
    }
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return Ok(char_def(c));
    }
    Err(Error::bad_request(format!(
        "unknown key {name:?}: use a single character or a key name such as Enter, Tab, Escape, Backspace, Delete, ArrowUp/Down/Left/Right, Home, End, PageUp, PageDown, F1–F12, optionally with modifiers (Control+a, Shift+Tab)"
    )))
}

/// The definition of the key that types character `c`, and whether Shift is needed.
pub fn char_def(c: char) -> (KeyDef, bool) {
    let def = |code: String, key_code: i64| KeyDef {
        key: c.to_string(),
        code,
        key_code,
        text: Some(c.to_string()),
        location: 0,
    };
    if c.is_ascii_lowercase() {
        return (
            def(
                format!("Key{}", c.to_ascii_uppercase()),
                c.to_ascii_uppercase() as i64,
            ),
            false,
        );
    }
    if c.is_ascii_uppercase() {
        return (def(format!("Key{c}"), c as i64), true);
    }
    if c.is_ascii_digit() {
        return (def(format!("Digit{c}"), c as i64), false);
    }
    if let Some(i) = SHIFTED_DIGITS.iter().position(|&d| d == c) {
        return (def(format!("Digit{i}"), 48 + i as i64), true);
    }
    for (plain, shifted, code, kc) in PUNCT {
        if c == *plain {
            return (def(code.to_string(), *kc), false);
        }
        if c == *shifted {
            return (def(code.to_string(), *kc), true);
        }
    }
    match c {
        ' ' => (def("Space".into(), 32), false),
        '\n' | '\r' => (
            KeyDef {
                key: "Enter".into(),
                code: "Enter".into(),
                key_code: 13,
                text: Some("\r".into()),
                location: 0,
            },
            false,
        ),
        '\t' => (
            KeyDef {
                key: "Tab".into(),
                code: "Tab".into(),
                key_code: 9,
                text: None,
                location: 0,
            },
            false,
        ),
        // Any other character: no physical key, the text alone.
        _ => (def(String::new(), 0), false),
    }
}

/// A parsed key press: modifiers to hold and the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Chord {
    pub modifiers: Vec<KeyDef>,
    pub bits: i64,
    pub key: KeyDef,
}

/// Parses `Enter`, `a`, `Control+a`, `Shift+Tab`, `Control+Shift+ArrowLeft`, `+`,
/// `Control++`. `ControlOrMeta` is Meta on macOS, Control elsewhere.
pub fn parse_chord(spec: &str) -> Result<Chord> {
    if spec.is_empty() {
        return Err(Error::bad_request("key is empty"));
    }
    let mut parts: Vec<&str> = Vec::new();
    let mut rest = spec;
    while let Some(i) = rest.find('+') {
        if i == 0 {
            // A literal '+' key (last part) or "++" meaning modifier then '+'.
            break;
        }
        parts.push(&rest[..i]);
        rest = &rest[i + 1..];
    }
    parts.push(rest);
    let last = parts.pop().unwrap_or_default();
    let mut modifiers = Vec::new();
    let mut bits = 0;
    for m in parts {
        let m = canonical(m);
        let m = if m.eq_ignore_ascii_case("ControlOrMeta") {
            if cfg!(target_os = "macos") {
                "Meta"
            } else {
                "Control"
            }
        } else {
            m
        };
        let bit = match m.to_ascii_lowercase().as_str() {
            "alt" => ALT,
            "control" => CONTROL,
            "meta" => META,
            "shift" => SHIFT,
            _ => {
                return Err(Error::bad_request(format!(
                    "unknown modifier {m:?} in {spec:?}: use Alt, Control, Meta, Shift or ControlOrMeta"
                )));
            }
        };
        bits |= bit;
        modifiers.push(key_def(m)?.0);
    }
    let (mut key, needs_shift) = key_def(last)?;
    if needs_shift && bits & SHIFT == 0 && bits != 0 {
        // "Control+A" means Control+Shift+a on a real keyboard.
        bits |= SHIFT;
    }
    if bits & (CONTROL | ALT | META) != 0 {
        // With a command modifier a key types nothing (Control+a selects all).
        key.text = None;
    }
    Ok(Chord {
        modifiers,
        bits,
        key,
    })
}

/// The modifier bits for Playwright-style modifier names.
pub fn modifier_bits(names: &[String]) -> Result<i64> {
    let mut bits = 0;
    for n in names {
        bits |= match canonical(n).to_ascii_lowercase().as_str() {
            "alt" => ALT,
            "control" => CONTROL,
            "meta" => META,
            "shift" => SHIFT,
            "controlormeta" => {
                if cfg!(target_os = "macos") {
                    META
                } else {
                    CONTROL
                }
            }
            _ => {
                return Err(Error::bad_request(format!(
                    "unknown modifier {n:?}: use Alt, Control, ControlOrMeta, Meta or Shift"
                )));
            }
        };
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_characters() {
        let (enter, _) = key_def("Enter").unwrap();
        assert_eq!(enter.key_code, 13);
        assert_eq!(enter.text.as_deref(), Some("\r"));
        let (a, shift) = key_def("a").unwrap();
        assert_eq!((a.code.as_str(), a.key_code, shift), ("KeyA", 65, false));
        let (big_a, shift) = key_def("A").unwrap();
        assert_eq!((big_a.code.as_str(), shift), ("KeyA", true));
        let (q, shift) = key_def("?").unwrap();
        assert_eq!((q.code.as_str(), q.key_code, shift), ("Slash", 191, true));
        assert_eq!(key_def("F5").unwrap().0.key_code, 116);
        assert_eq!(key_def("esc").unwrap().0.key, "Escape");
        assert!(key_def("Nonsense").is_err());
        let (e, _) = key_def("é").unwrap();
        assert_eq!((e.key_code, e.text.as_deref()), (0, Some("é")));
    }

    #[test]
    fn chords() {
        let c = parse_chord("Control+a").unwrap();
        assert_eq!(c.bits, CONTROL);
        assert_eq!(c.key.code, "KeyA");
        assert_eq!(c.key.text, None);
        let c = parse_chord("Shift+Tab").unwrap();
        assert_eq!(c.bits, SHIFT);
        assert_eq!(c.key.key, "Tab");
        let c = parse_chord("+").unwrap();
        assert_eq!((c.bits, c.key.code.as_str()), (0, "Equal"));
        let c = parse_chord("Control++").unwrap();
        assert_eq!(c.bits, CONTROL | SHIFT);
        assert_eq!(c.key.key, "+");
        assert!(parse_chord("Hyper+a").is_err());
        assert!(parse_chord("").is_err());
    }
}
