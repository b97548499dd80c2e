//! The page-tool wrapper: what every tool that touches a page does around its own
//! work. [`Ctx::on_page`] / [`Ctx::on`] hold the page's op lock (tool calls on one tab
//! run one at a time); [`Ctx::act`] adds the action's prologue and epilogue: resolve the
//! targets, mark the page, act, then answer with what changed. No tool locks a page by
//! hand.

use std::sync::Arc;

use super::report;
use super::{Ctx, Out};
use crate::browser::element::Element;
use crate::browser::page::Page;
use crate::error::Result;

impl Ctx<'_> {
    /// Runs `f` on the current page, its op lock held.
    pub async fn on_page<T>(&self, f: impl AsyncFnOnce(&Arc<Page>) -> Result<T>) -> Result<T> {
        let page = self.browser.page().await?;
        self.on(&page, f).await
    }

    /// Runs `f` on `page`, its op lock held.
    pub async fn on<T>(
        &self,
        page: &Arc<Page>,
        f: impl AsyncFnOnce(&Arc<Page>) -> Result<T>,
    ) -> Result<T> {
        let _op = page.exclusive().await;
        f(page).await
    }

    /// An action on the current page: with its op lock held, resolves `targets`,
    /// marks the page, runs `act` with the elements, and answers with what changed,
    /// led by the line `act` returns (empty for none).
    pub async fn act<const N: usize>(
        &self,
        targets: [&str; N],
        act: impl AsyncFnOnce(&Arc<Page>, [Element; N]) -> Result<String>,
    ) -> Result<Out> {
        self.on_page(async |page| {
            let mut found = Vec::with_capacity(N);
            for t in targets {
                found.push(self.browser.resolve(page, t).await?);
            }
            let Ok(elements) = <[Element; N]>::try_from(found) else {
                unreachable!("one element per target");
            };
            let m = report::mark(page);
            let lead = act(page, elements).await?;
            Ok(Out::text(
                report::after_action(self.browser, page, m, &lead).await?,
            ))
        })
        .await
    }
}
