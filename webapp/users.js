// The readers: the directory of public profiles, and a reader's public page (who they are, the
// figures of their public entries, those entries, and their collection when they share it).
// Anyone may look; what the API refuses is said in its words.

import { get } from "./api.js";
import { day, h, listToolbar, pager, pageSummary, showFailure } from "./dom.js";
import { CLIENT, PAGE_SIZES, PROGRESS_TYPES, READER_ORDERS, STATUSES, label } from "./vocabulary.js";

const PAGE = 20;

const publicPage = (user) => `#/users/${encodeURIComponent(user.slug)}`;

/** Every reader with a public profile (GET /users): searched by the beginning of the name, ordered, paged. */
export async function usersScreen(ctx) {
  const search = ctx.params.get("search") || "";
  const order = ctx.params.get("order") || "name-asc";
  const limit = Number(ctx.params.get("limit")) || PAGE;
  const offset = Number(ctx.params.get("offset")) || 0;
  const { form, go } = listToolbar(ctx, "/users", "Search readers", [
    ["Order", "order", READER_ORDERS, order],
    ["Per page", "limit", PAGE_SIZES, limit]]);
  const heading = h("h1", {}, "Readers");
  let page;
  try {
    page = await get("/users", { search, order, limit, offset });
  } catch (failure) {
    // A search too broad for the registration order names `search`: said beside the box.
    showFailure(form, failure);
    return [heading, form];
  }
  const items = page.users.map((user) => h("li", { class: "card person" },
    user.profile_image
      ? h("img", { class: "avatar", src: user.profile_image, alt: "", width: 48, height: 48 })
      : h("span", { class: "avatar none", "aria-hidden": "true" }),
    h("a", { href: publicPage(user) }, user.username)));
  return [heading, form, pageSummary("readers", page), h("ul", { class: "cards" }, items),
    pager(page, limit, go)];
}

function statsCard(stats) {
  const rows = [
    ["Public entries", stats.entries],
    ...STATUSES.map(([value, text]) => [text, stats.by_status[value] || 0]),
    ["Volumes read", stats.volumes_read],
    ["Chapters read", stats.chapters_read],
    ["Mean score", stats.mean_score === null ? "No scores yet" : stats.mean_score],
  ];
  return h("section", { class: "card", "aria-labelledby": "public-stats-heading" },
    h("h2", { id: "public-stats-heading" }, "Figures"),
    h("dl", { class: "figures" }, rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])));
}

async function collectionCard(slug) {
  let page;
  try {
    page = await get(`/users/${encodeURIComponent(slug)}/collection`, { client: CLIENT, limit: PAGE });
  } catch (failure) {
    // A collection its owner keeps private is refused (403), as the API words it.
    return h("section", { class: "card", "aria-labelledby": "public-collection-heading" },
      h("h2", { id: "public-collection-heading" }, "Collection"),
      h("p", { class: "muted", "data-answer": "collection" }, failure.message));
  }
  return h("section", { class: "card", "aria-labelledby": "public-collection-heading" },
    h("h2", { id: "public-collection-heading" }, `Collection (${page.max} volume${page.max === 1 ? "" : "s"})`),
    h("ul", { class: "rows" }, page.volumes.map((volume) => h("li", {},
      `${volume.series.name}: ${volume.name || `volume ${volume.id}`}`))),
    page.max > page.to ? h("p", { class: "muted" }, `and ${page.max - page.to} more`) : null);
}

export async function publicProfileScreen(ctx, slug) {
  const offset = Number(ctx.params.get("offset")) || 0;
  let profile;
  try {
    profile = await get(`/users/${encodeURIComponent(slug)}`);
  } catch (failure) {
    return [h("h1", {}, "Public profile"), h("p", { class: "error", role: "alert" }, failure.message)];
  }
  const [entries, collection] = await Promise.all([
    get(`/users/${encodeURIComponent(slug)}/reading-history`, { limit: PAGE, offset }),
    collectionCard(slug),
  ]);
  const { user, stats } = profile;
  const items = entries.series.map((series) => {
    const entry = series["reading-history"];
    const facts = [`${label(PROGRESS_TYPES, entry.progress_type)}: ${entry.progress}`,
      entry.score ? `Score: ${entry.score}` : null].filter(Boolean);
    return h("li", { class: "card entry" },
      h("a", { href: `#/series/${encodeURIComponent(series.slug)}` }, series.alias || series.name),
      " ", h("span", { class: `badge status-${entry.status}` }, label(STATUSES, entry.status)),
      h("p", { class: "muted" }, facts.join(" · ")));
  });
  return [
    h("div", { class: "person" },
      user.profile_image
        ? h("img", { class: "avatar", src: user.profile_image, alt: `${user.username}'s profile image`, width: 96, height: 96 })
        : null,
      h("div", {},
        h("h1", {}, user.username),
        h("p", { class: "muted" }, "Reader since ", day(user.registered)))),
    h("div", { class: "columns even" }, statsCard(stats), collection),
    h("section", { "aria-labelledby": "public-list-heading" },
      h("h2", { id: "public-list-heading" }, "Public list"),
      pageSummary("entries", entries),
      h("ul", { class: "cards" }, items),
      pager(entries, PAGE, (next) => ctx.navigate(`/users/${encodeURIComponent(slug)}`, { offset: next }))),
    h("p", {}, h("a", { href: "#/users" }, "All readers")),
  ];
}
