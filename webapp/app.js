// The reference web app: hash routes (`#/`, `#/series/<slug>`, `#/list`, `#/stats`, `#/profile`,
// `#/import`, `#/users`, `#/users/<slug>`, `#/signin`, `#/signup`), so that no page of the app has a path an
// API route could want.

import { loadSession, currentUser, signInScreen, signOut, signUpScreen, whenSessionEnds } from "./auth.js";
import { catalogScreen, seriesScreen } from "./catalog.js";
import { h } from "./dom.js";
import { importScreen } from "./import.js";
import { listScreen } from "./list.js";
import { profileScreen } from "./profile.js";
import { publicProfileScreen, usersScreen } from "./users.js";
import { statsScreen } from "./stats.js";

const ROUTES = [
  [/^\/$/, (ctx) => catalogScreen(ctx), "Catalog"],
  [/^\/series\/([^/]+)$/, (ctx, slug) => seriesScreen(ctx, decodeURIComponent(slug)), "Series"],
  [/^\/list$/, (ctx) => listScreen(ctx), "My list"],
  [/^\/stats$/, () => statsScreen(), "Statistics"],
  [/^\/profile$/, (ctx) => profileScreen(ctx), "Profile"],
  [/^\/import$/, (ctx) => importScreen(ctx), "Import"],
  [/^\/users$/, (ctx) => usersScreen(ctx), "Readers"],
  [/^\/users\/([^/]+)$/, (ctx, slug) => publicProfileScreen(ctx, decodeURIComponent(slug)), "Public profile"],
  [/^\/signin$/, (ctx) => signInScreen(ctx), "Sign in"],
  [/^\/signup$/, (ctx) => signUpScreen(ctx), "Sign up"],
];

const view = document.getElementById("view");
let shownPath = null;
let renders = 0;
// What the next screen says it follows from ("Account deleted"), when a move to it is an action's end.
let pendingNotice = null;

function currentRoute() {
  const raw = window.location.hash.startsWith("#/") ? window.location.hash.slice(1) : "/";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

function navigate(path, params = {}, notice = null) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "" && !(key === "offset" && Number(value) === 0)) {
      query.set(key, String(value));
    }
  }
  const text = query.toString();
  const hash = `#${path}${text ? `?${text}` : ""}`;
  if (window.location.hash === hash) {
    render(notice);
  } else {
    pendingNotice = notice;
    window.location.hash = hash;
  }
}

function renderNav() {
  const nav = document.getElementById("nav");
  const user = currentUser();
  const link = (href, text) => h("li", {}, h("a", { href }, text));
  const items = [link("#/", "Catalog"), link("#/users", "Readers")];
  if (user) {
    items.push(link("#/list", "My list"), link("#/stats", "Statistics"), link("#/import", "Import"),
      link("#/profile", "Profile"));
    items.push(h("li", { class: "who" }, `Signed in as ${user.username}`));
    items.push(h("li", {}, h("button", { type: "button", class: "secondary", onclick: async () => {
      await signOut();
      renderNav();
      navigate("/");
    } }, "Sign out")));
  } else {
    items.push(link("#/signin", "Sign in"), link("#/signup", "Sign up"));
  }
  nav.replaceChildren(...items);
}

async function render(notice) {
  // Screens load as they are asked for; only the last one asked is shown.
  const turn = ++renders;
  const { path, params } = currentRoute();
  const match = ROUTES.map(([pattern, screen, name]) => [path.match(pattern), screen, name]).find(([m]) => m);
  const ctx = { params, navigate, rerender: (message) => render(message) };
  let content;
  let name = "Not found";
  try {
    if (match) {
      const [found, screen, routeName] = match;
      name = routeName;
      content = await screen(ctx, ...found.slice(1));
    } else {
      content = [h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the catalog"))];
    }
  } catch (failure) {
    content = [h("h1", {}, name), h("p", { class: "error", role: "alert" }, failure.message)];
  }
  if (turn !== renders) return;
  renderNav();
  const status = h("p", { class: "notice", role: "status", tabindex: "-1" }, notice || "");
  view.replaceChildren(status, ...[content].flat().filter(Boolean));
  const heading = view.querySelector("h1");
  document.title = `${heading ? heading.textContent : name} · Tsundoku`;
  // A new screen moves focus to its heading; the same screen with new results to their summary,
  // so a keyboard or screen reader user hears what changed without losing their place.
  // After an action the control that was used is gone (the screen is drawn anew): focus goes to
  // the notice that says what happened, not to the top of the document.
  const target = notice ? status
    : path === shownPath ? view.querySelector("[data-focus=results]") : heading;
  shownPath = path;
  if (target) {
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
  }
}

window.addEventListener("hashchange", () => {
  const notice = pendingNotice;
  pendingNotice = null;
  if (window.location.hash === "" || window.location.hash.startsWith("#/")) render(notice);
});

// A session that ends while the page is open (found by a call's 401): the screen is drawn again
// for nobody signed in, the navigation offers Sign in, and a line says why.
whenSessionEnds(() => render("Your session has ended. Sign in again to go on."));

loadSession().catch(() => null).then(() => render());
