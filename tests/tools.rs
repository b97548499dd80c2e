//! Every tool, through a real MCP client over stdio, against the built `tabmux` binary,
//! driving headless Chromium on fixture pages; assertions on what the pages did.
//!
//! The same scenarios run over the direct link (`--launch`) here; the extension link
//! runs them again in `tests/extension.rs`.

mod common;
#[macro_use]
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

every_scenario!(scenario_tests);
