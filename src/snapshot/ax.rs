//! The CDP `Accessibility.AXNode` shape, as `Accessibility.getFullAXTree` returns it.

use serde::Deserialize;
use serde_json::Value;

/// One node of CDP `Accessibility.getFullAXTree`, deserialized straight from CDP JSON.
/// Fields tabmux does not use (`chromeRole`, `ignoredReasons`, `name.sources`, …) are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AxNode {
    pub node_id: String,
    #[serde(default)]
    pub ignored: bool,
    #[serde(default)]
    pub role: Option<AxValue>,
    #[serde(default)]
    pub name: Option<AxValue>,
    #[serde(default)]
    pub description: Option<AxValue>,
    #[serde(default)]
    pub value: Option<AxValue>,
    #[serde(default)]
    pub properties: Vec<AxProperty>,
    #[serde(default)]
    pub child_ids: Vec<String>,
    #[serde(default, rename = "backendDOMNodeId")]
    pub backend_dom_node_id: Option<i64>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub frame_id: Option<String>,
}

/// CDP `Accessibility.AXValue`: a typed value (`role`, `computedString`, `tristate`, …).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AxValue {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub value: Option<Value>,
}

/// CDP `Accessibility.AXProperty`: a named state or relation of a node.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AxProperty {
    pub name: String,
    pub value: AxValue,
}

impl AxValue {
    /// The value as text: strings as they are, numbers and booleans printed; "" otherwise.
    pub fn text(&self) -> String {
        match &self.value {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        }
    }

    fn str(&self) -> &str {
        match &self.value {
            Some(Value::String(s)) => s,
            _ => "",
        }
    }
}

impl AxNode {
    /// The role string (`button`, `StaticText`, `RootWebArea`, …); "" when missing.
    pub fn role(&self) -> &str {
        self.role.as_ref().map_or("", AxValue::str)
    }

    /// The accessible name; "" when missing.
    pub fn name(&self) -> &str {
        self.name.as_ref().map_or("", AxValue::str)
    }

    /// The value of a property, if the node has it.
    pub fn prop(&self, name: &str) -> Option<&Value> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.value.as_ref())
    }

    /// A property read as a boolean: `true`, or the strings "true"/"mixed" for tristates.
    pub fn prop_true(&self, name: &str) -> bool {
        match self.prop(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        }
    }

    /// A string property ("" when absent or not a string).
    pub fn prop_str(&self, name: &str) -> &str {
        match self.prop(name) {
            Some(Value::String(s)) => s,
            _ => "",
        }
    }

    /// A property read as text ("" when absent).
    pub fn prop_text(&self, name: &str) -> String {
        match self.prop(name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        }
    }
}
