// The reader's list: every entry or those of one status, searched, in every order the API offers,
// a page at a time.

import { get } from "./api.js";
import { h, listToolbar, pager, pageSummary, showFailure } from "./dom.js";
import { currentUser } from "./auth.js";
import { HISTORY_ORDERS, PAGE_SIZES, PRIORITIES, PROGRESS_TYPES, STATUSES, label } from "./vocabulary.js";

export async function listScreen(ctx) {
  if (!currentUser()) {
    return [h("h1", {}, "My list"), h("p", {}, h("a", { href: "#/signin" }, "Sign in"), " to see your list.")];
  }
  const search = ctx.params.get("search") || "";
  const order = ctx.params.get("order") || "update-desc";
  const status = ctx.params.get("status") || "";
  const limit = Number(ctx.params.get("limit")) || 20;
  const offset = Number(ctx.params.get("offset")) || 0;
  const { form, go } = listToolbar(ctx, "/list", "Search my list", [
    ["Show", "status", [["", "All statuses"], ...STATUSES], status],
    ["Order", "order", HISTORY_ORDERS, order],
    ["Per page", "limit", PAGE_SIZES, limit]]);
  let page;
  try {
    page = await get("/user/reading-history", { search, status, order, limit, offset });
  } catch (failure) {
    showFailure(form, failure);
    return [h("h1", {}, "My list"), form];
  }
  const items = page.series.map((series) => {
    const entry = series["reading-history"];
    const facts = [
      `${label(PROGRESS_TYPES, entry.progress_type)}: ${entry.progress}`,
      `Priority: ${label(PRIORITIES, entry.priority)}`,
      entry.score ? `Score: ${entry.score}` : null,
      entry.start ? `Started ${entry.start}` : null,
      entry.end ? `Finished ${entry.end}` : null,
    ].filter(Boolean);
    return h("li", { class: "card entry" },
      h("a", { href: `#/series/${encodeURIComponent(series.slug)}` }, series.alias || series.name),
      " ", h("span", { class: `badge status-${entry.status}` }, label(STATUSES, entry.status)),
      h("p", { class: "muted" }, facts.join(" · ")));
  });
  return [
    h("h1", {}, "My list"), form, pageSummary("entries", page),
    h("ul", { class: "cards" }, items),
    pager(page, limit, go),
  ];
}
