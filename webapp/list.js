// The reader's list: every entry or those of one status, searched, in every order the API offers,
// a page at a time.

import { get } from "./api.js";
import { field, formError, h, options, pager, pageSummary, showFailure } from "./dom.js";
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
  const box = h("input", { type: "search", value: search, maxlength: 100, autocomplete: "off" });
  const statusChoice = h("select", {}, options([["", "All statuses"], ...STATUSES], status));
  const orderChoice = h("select", {}, options(HISTORY_ORDERS, order));
  const sizeChoice = h("select", {}, options(PAGE_SIZES, limit));
  const form = h("form", { role: "search", class: "toolbar" },
    field("Search my list", box, "search"),
    field("Show", statusChoice, "status"),
    field("Order", orderChoice, "order"),
    field("Per page", sizeChoice, "limit"),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Search")),
    formError());
  const show = (next) => ctx.navigate("/list", { search: box.value.trim(), status: statusChoice.value,
    order: orderChoice.value, limit: sizeChoice.value, offset: next });
  form.addEventListener("submit", (event) => { event.preventDefault(); show(0); });
  for (const choice of [statusChoice, orderChoice, sizeChoice]) choice.addEventListener("change", () => show(0));
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
    pager(page, limit, (next) => show(next)),
  ];
}
