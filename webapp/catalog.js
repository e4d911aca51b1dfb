// The catalog: browsing and searching the series, and a series page with the reader's status,
// rating and owned volumes.

import { call, del, get, post } from "./api.js";
import { attempt, clearErrors, field, formError, h, listToolbar, options, pager, pageSummary, showFailure } from "./dom.js";
import { currentUser } from "./auth.js";
import { CLIENT, PRIORITIES, PROGRESS_TYPES, RATINGS, STATUSES, VISIBILITIES } from "./vocabulary.js";

const PAGE = 20;

function title(series) {
  return series.alias || series.name;
}

export async function catalogScreen(ctx) {
  const search = ctx.params.get("search") || "";
  const offset = Number(ctx.params.get("offset")) || 0;
  const { form, go } = listToolbar(ctx, "/", "Search series", []);
  let page;
  try {
    page = await get("/series", { client: CLIENT, search, limit: PAGE, offset });
  } catch (failure) {
    showFailure(form, failure, () => "search");
    return [h("h1", {}, "Catalog"), form];
  }
  const items = page.series.map((series) => h("li", { class: "card" },
    h("a", { href: `#/series/${encodeURIComponent(series.slug)}` }, title(series)),
    series.alias && series.alias !== series.name ? h("span", { class: "muted" }, ` (${series.name})`) : null,
    h("p", { class: "muted" }, [series.type, series.origin].filter(Boolean).join(" · "),
      series.average_rating !== null ? ` · rated ${series.average_rating} (${series.rating_count})` : "")));
  return [
    h("h1", {}, "Catalog"), form, pageSummary("series", page),
    h("ul", { class: "cards" }, items),
    pager(page, PAGE, go),
  ];
}

function statusBody(form, series, stored) {
  // Update replaces the whole entry: the fields this form does not show are sent as stored.
  const body = {};
  for (const key of ["reread", "score", "start", "end", "notes"]) {
    if (stored && stored[key] !== null && stored[key] !== undefined) body[key] = stored[key];
  }
  const value = (name) => form.elements[name].value;
  return { ...body, client: series.client, status: value("status"), progress_type: value("progress_type"),
    progress: Number(value("progress")), priority: value("priority"), visibility: value("visibility") };
}

function statusSection(series, stored, refresh) {
  const progress = h("input", { type: "number", min: 0, max: 1000000, step: 1, inputmode: "numeric",
    value: stored ? stored.progress : 0 });
  const form = h("form", { class: "card", "aria-labelledby": "status-heading" },
    h("h2", { id: "status-heading" }, stored ? "On your list" : "Not on your list yet"),
    h("div", { class: "grid" },
      field("Status", h("select", {}, options(STATUSES, stored ? stored.status : "planned")), "status"),
      field("Progress", progress, "progress"),
      field("Progress in", h("select", {}, options(PROGRESS_TYPES, stored ? stored.progress_type : "volumes")),
        "progress_type"),
      field("Priority", h("select", {}, options(PRIORITIES, stored ? stored.priority : "mid")), "priority"),
      field("Visibility", h("select", {}, options(VISIBILITIES, stored ? stored.visibility : "private")),
        "visibility")),
    h("div", { class: "actions" },
      h("button", { type: "submit" }, stored ? "Save status" : "Add to list"),
      stored ? h("button", { type: "button", class: "secondary", onclick: remove }, "Remove from list") : null),
    formError());
  async function remove() {
    await attempt(form, async () => {
      await del(`/user/reading-status/delete/${series.id}`);
      await refresh("Removed from your list");
    });
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      const verb = stored ? "update" : "add";
      await post(`/user/reading-status/${verb}/${series.id}`, statusBody(form, series, stored));
      await refresh(stored ? "Status saved" : "Added to your list");
    } catch (failure) {
      showFailure(form, failure);
    }
  });
  return form;
}

function ratingSection(series, stored, refresh) {
  const choice = h("select", {}, h("option", { value: "" }, "No rating"), options(RATINGS, stored ? stored.rating : ""));
  const form = h("form", { class: "card", "aria-labelledby": "rating-heading" },
    h("h2", { id: "rating-heading" }, "Your rating"),
    field("Rating", choice, "rating"),
    h("div", { class: "actions" },
      h("button", { type: "submit" }, "Rate"),
      stored ? h("button", { type: "button", class: "secondary", onclick: remove }, "Remove rating") : null),
    formError());
  async function remove() {
    await attempt(form, async () => {
      await del(`/user/series-rating/delete/${series.id}`);
      await refresh("Rating removed");
    });
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      // An empty choice is sent as it is: the API says what it makes of it, beside the control.
      const rating = choice.value === "" ? null : Number(choice.value);
      await post(`/user/series-rating/${stored ? "update" : "add"}/${series.id}`, { rating });
      await refresh("Rating saved");
    } catch (failure) {
      showFailure(form, failure);
    }
  });
  return form;
}

/**
 * A volume of the series page. Signed in, it is a form: price and date bought to mark it owned, or,
 * when it is in the collection, its item's price and date to change, and its removal.
 */
function volumeItem(volume, signedIn, refresh) {
  const heading = volume.name || `Volume ${volume.id}`;
  const details = h("p", { class: "muted" }, [volume.language, volume.release_date, volume.pages && `${volume.pages} pages`]
    .filter(Boolean).join(" · "));
  if (!signedIn) return h("li", { class: "card" }, h("h3", {}, heading), details);
  const owned = volume.collection;
  const price = h("input", { type: "number", min: 0, max: 100000, step: "0.01", inputmode: "decimal",
    value: owned?.price ?? "" });
  const date = h("input", { type: "date", value: owned?.buy_date ?? "" });
  // Not checked by the browser: the API's own words say what is wrong, beside the control.
  const form = h("form", { class: "card", "aria-label": heading, novalidate: true },
    h("h3", {}, heading), details, owned ? h("p", { class: "owned" }, "In your collection") : null,
    h("div", { class: "grid" }, field("Price", price, "price"), field("Date bought", date, "date")),
    h("div", { class: "actions" }, owned
      ? [h("button", { type: "submit" }, "Save price and date"),
        h("button", { type: "button", class: "secondary", onclick: remove }, "Remove from collection")]
      : h("button", { type: "submit" }, "Mark owned")),
    formError());
  // A blank control is sent as null: the API keeps the value as unknown.
  const body = () => ({ price: price.value === "" ? null : Number(price.value), date: date.value || null });
  // If-Match: the item as this page read it. A change made elsewhere since is neither overwritten
  // nor removed: the API answers 412, said on the form's line.
  const item = owned ? `/${encodeURIComponent(owned.item_id)}` : "";
  const unchanged = owned ? { "If-Match": owned.etag } : {};
  async function remove() {
    await attempt(form, async () => {
      await call("DELETE", `/user/collection/delete${item}`, { headers: unchanged });
      await refresh(`${heading} removed from your collection`);
    });
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await attempt(form, async () => {
      if (owned) {
        await call("POST", `/user/collection/update${item}`, { body: body(), headers: unchanged });
        await refresh(`${heading}: price and date saved`);
      } else {
        await post(`/user/collection/add/${volume.id}`, body());
        await refresh(`${heading} added to your collection`);
      }
    });
  });
  return h("li", {}, form);
}

export async function seriesScreen(ctx, slug) {
  let series;
  try {
    series = await get(`/series/slug/${encodeURIComponent(slug)}`);
  } catch (failure) {
    return [h("h1", {}, "Series"), h("p", { class: "error", role: "alert" }, failure.message)];
  }
  const user = currentUser();
  const [status, rating, volumes] = await Promise.all([
    user ? get(`/user/reading-status/id/${series.id}`) : null,
    user ? get(`/user/series-rating/${series.id}`) : null,
    get(`/series/volumes/${series.id}`),
  ]);
  const refresh = (message) => ctx.rerender(message);
  const about = [
    h("h1", {}, title(series)),
    series.alias && series.alias !== series.name ? h("p", { class: "muted" }, series.name) : null,
    h("p", { class: "muted" }, [series.type, series.origin].filter(Boolean).join(" · ")),
    h("p", {}, series.average_rating !== null
      ? `Average rating ${series.average_rating} from ${series.rating_count} reader${series.rating_count === 1 ? "" : "s"}`
      : "Not rated yet"),
    series.description ? h("p", { class: "description" }, series.description) : null,
  ];
  const mine = user
    ? h("div", { class: "columns" }, statusSection(series, status, refresh), ratingSection(series, rating, refresh))
    : h("p", { class: "card" }, h("a", { href: "#/signin" }, "Sign in"), " to add this series to your list.");
  return [
    ...about, mine,
    h("section", { "aria-labelledby": "volumes-heading" },
      h("h2", { id: "volumes-heading" }, `Volumes (${volumes.max})`),
      h("ul", { class: "cards volumes" }, volumes.volumes.map((v) => volumeItem(v, Boolean(user), refresh)))),
  ];
}
