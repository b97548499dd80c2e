//! What a tool is: name, title, description, hints, argument type and handler, in one
//! [`ToolDef`] written beside its handler with [`tool!`](crate::tool). The argument
//! type's JSON Schema is derived from the type (`schemars`): field doc comments are the
//! descriptions the model reads, so keep them short. [`choice!`](crate::choice)
//! defines a string argument with a fixed set of values once, for the schema and for
//! parsing.

use std::future::Future;
use std::pin::Pin;

use rmcp::model::Tool;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{Ctx, Out};
use crate::error::{Error, Result};

/// What a tool may do to the world, as MCP hints tell clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Reads only.
    Read,
    /// Changes the page, but nothing that cannot be redone (navigation, resizing).
    Act,
    /// May change or destroy state (clicks, typing, closing).
    Destroy,
}

impl Kind {
    fn annotations(self, title: &str) -> Value {
        match self {
            Kind::Read => json!({"title": title, "readOnlyHint": true, "openWorldHint": true}),
            Kind::Act => {
                json!({"title": title, "readOnlyHint": false, "destructiveHint": false, "openWorldHint": true})
            }
            Kind::Destroy => {
                json!({"title": title, "readOnlyHint": false, "destructiveHint": true, "openWorldHint": true})
            }
        }
    }
}

/// A running tool call.
pub type Call<'a> = Pin<Box<dyn Future<Output = Result<Out>> + Send + 'a>>;

/// One tool: everything about it in one place.
pub struct ToolDef {
    /// The name clients call (Playwright MCP's where it has the tool).
    pub name: &'static str,
    /// A short title for people (`annotations.title`).
    pub title: &'static str,
    /// What the model reads: exactly what it needs, nothing more.
    pub description: &'static str,
    /// The hints.
    pub kind: Kind,
    /// The JSON Schema of the arguments, derived from their type.
    pub schema: fn() -> Map<String, Value>,
    /// Parses the arguments (a wrong shape is `BAD_REQUEST`) and runs the handler.
    pub call: for<'a> fn(&'a Ctx<'a>, Value) -> Call<'a>,
}

impl ToolDef {
    /// The tool as `tools/list` shows it.
    pub fn to_tool(&self) -> Tool {
        let v = json!({
            "name": self.name,
            "description": self.description,
            "inputSchema": (self.schema)(),
            "annotations": self.kind.annotations(self.title),
        });
        serde_json::from_value(v).expect("tool definitions are valid")
    }
}

/// Defines a [`ToolDef`]: `tool!(name, title, Kind, Args, handler, "description")`,
/// where `handler` is `async fn(&Ctx<'_>, Args) -> Result<Out>`.
#[macro_export]
macro_rules! tool {
    ($name:literal, $title:literal, $kind:ident, $args:ty, $handler:path, $description:literal $(,)?) => {{
        fn call<'a>(
            ctx: &'a $crate::mcp::Ctx<'a>,
            args: serde_json::Value,
        ) -> $crate::mcp::tool::Call<'a> {
            Box::pin(async move {
                let args: $args = $crate::mcp::tool::parse(args)?;
                $handler(ctx, args).await
            })
        }
        $crate::mcp::tool::ToolDef {
            name: $name,
            title: $title,
            description: $description,
            kind: $crate::mcp::tool::Kind::$kind,
            schema: $crate::mcp::tool::schema::<$args>,
            call,
        }
    }};
}

/// Parses a tool's arguments; a wrong shape is a clear `BAD_REQUEST`.
pub fn parse<T: DeserializeOwned>(args: Value) -> Result<T> {
    let args = if args.is_null() {
        Value::Object(Default::default())
    } else {
        args
    };
    serde_json::from_value(args).map_err(|e| Error::bad_request(format!("bad arguments: {e}")))
}

/// Arguments of a tool that takes none.
#[derive(serde::Deserialize, JsonSchema)]
pub struct NoArgs {}

/// The JSON Schema of `T`, as compact as a hand-written one: subschemas inline, no
/// `$schema`, titles, formats or defaults; an optional field is its type, not "or null".
pub fn schema<T: JsonSchema>() -> Map<String, Value> {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let root = settings.into_generator().into_root_schema_for::<T>();
    let mut v = serde_json::to_value(root).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("description");
    }
    simplify(&mut v);
    match v {
        Value::Object(mut o) => {
            o.entry("properties").or_insert_with(|| json!({}));
            o
        }
        _ => Map::new(),
    }
}

fn simplify(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for k in [
                "$schema", "title", "format", "default", "minimum", "maximum",
            ] {
                o.remove(k);
            }
            // ["string", "null"] → "string"
            if let Some(Value::Array(types)) = o.get("type") {
                let kept: Vec<Value> = types
                    .iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .cloned()
                    .collect();
                if kept.len() == 1 {
                    o.insert("type".into(), kept[0].clone());
                }
            }
            // {"anyOf": [X, {"type": "null"}], ...} → X with the other keys
            if let Some(Value::Array(any)) = o.get("anyOf") {
                let kept: Vec<&Value> = any
                    .iter()
                    .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
                    .collect();
                if kept.len() == 1
                    && let Some(inner) = kept[0].as_object().cloned()
                {
                    o.remove("anyOf");
                    for (k, x) in inner {
                        o.entry(k).or_insert(x);
                    }
                }
            }
            // An optional choice: its values, without null.
            if let Some(Value::Array(values)) = o.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            if o.get("required")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                o.remove("required");
            }
            for x in o.values_mut() {
                simplify(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(simplify),
        _ => {}
    }
}

/// `unknown button "x": use left, right or middle`.
pub fn unknown(what: &str, got: &str, names: &[&str]) -> String {
    let list = match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    format!("unknown {what} {got:?}: use {list}")
}

/// Defines a string argument with a fixed set of values once: the enum, its names (the
/// schema's `enum`) and parsing, whose error names the values to use.
///
/// `choice!(pub enum Button as "button" { Left = "left", Right = "right" })`, optionally
/// followed by `parse with f` where `f(&str) -> Option<Self>` also takes aliases; or
/// `choice!(impl Level as "level" ["error", "info"] parse with Level::parse)` for a type
/// defined elsewhere.
#[macro_export]
macro_rules! choice {
    ($(#[$m:meta])* $vis:vis enum $name:ident as $what:literal { $($v:ident = $s:literal),+ $(,)? } $(parse with $parse:path)?) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name { $($v),+ }
        impl $name {
            /// The names, as the schema lists them.
            #[allow(dead_code)]
            pub const NAMES: &'static [&'static str] = &[$($s),+];
            /// This value's name.
            #[allow(dead_code)]
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
            /// The value of this exact name.
            #[allow(dead_code)]
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)+ _ => None }
            }
        }
        $crate::choice!(impl $name as $what [$($s),+] parse with $crate::choice!(@parse $name $($parse)?));
    };
    (@parse $name:ident) => { $name::from_name };
    (@parse $name:ident $parse:path) => { $parse };
    (impl $ty:ty as $what:literal [$($s:literal),+ $(,)?] parse with $parse:expr) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                let names: &[&str] = &[$($s),+];
                ($parse)(s.as_str()).ok_or_else(|| {
                    <D::Error as serde::de::Error>::custom($crate::mcp::tool::unknown($what, &s, names))
                })
            }
        }
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "enum": [$($s),+]})
            }
        }
    };
}

/// Ref from the snapshot (e.g. e12) or a CSS selector
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct Target(String);

/// What the element is, for people
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct Element(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_the_values() {
        assert_eq!(
            unknown("button", "x", &["left", "right", "middle"]),
            "unknown button \"x\": use left, right or middle"
        );
        assert_eq!(unknown("kind", "x", &["a"]), "unknown kind \"x\": use a");
    }
}
