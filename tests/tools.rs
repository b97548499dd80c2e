//! Every tool, through a real MCP client over stdio, against the built `tabmux` binary,
//! driving headless Chromium on fixture pages; assertions on what the pages did.
//!
//! The same scenarios run over the direct link (`--launch`) here; the extension link
//! runs them again in `tests/extension.rs`.

mod common;
mod scenarios;

use common::{Client, Fixtures, require_chromium};

async fn launch() -> (Client, Fixtures) {
    require_chromium();
    let fx = Fixtures::start().await;
    let c = Client::start("tools-test", &["--launch"]).await;
    (c, fx)
}

macro_rules! scenario_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (c, fx) = launch().await;
                scenarios::$name(&c, &fx).await;
            }
        )*
    };
}

scenario_tests!(
    form_inputs,
    dialogs,
    frames,
    shadow_dom,
    console_and_network,
    navigation,
    bad_refs,
    long_page,
    waiting,
    not_actionable,
    drag_and_hover,
    keyboard,
    screenshots,
    tabs,
    evaluate,
    popups,
);
