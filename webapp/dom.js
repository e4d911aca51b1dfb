// Building the page from plain elements: text is always set as text, never parsed as HTML, so
// nothing a title or an error holds can become markup.

/** An element: `h("a", {href: "#/"}, "text", child)`. `on*` attributes become listeners. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

let unique = 0;
/** A fresh id, for a label's `for` and an error's `aria-describedby`. */
export function newId(prefix) {
  unique += 1;
  return `${prefix}-${unique}`;
}

/**
 * A labelled control with its error line underneath. `control` is an input, select or textarea
 * element; `name` is the API field its errors name.
 */
export function field(labelText, control, name) {
  const id = control.id || newId(name || "field");
  control.id = id;
  if (name) control.name = name;
  const error = h("p", { class: "error", id: `${id}-error`, "aria-live": "polite" });
  control.setAttribute("aria-describedby", error.id);
  const wrapper = h("div", { class: "field" }, h("label", { for: id }, labelText), control, error);
  wrapper.dataset.field = name || "";
  return wrapper;
}

/** An options list for a <select>: [[value, text], ...]; `selected` is the value chosen. */
export function options(pairs, selected) {
  return pairs.map(([value, text]) => h("option", { value, selected: String(value) === String(selected) }, text));
}

/** Clears the errors a form shows. */
export function clearErrors(form) {
  for (const error of form.querySelectorAll(".error")) error.textContent = "";
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
}

/**
 * Shows an API failure in `form`: the API's message beside each control its `errors` name (with
 * that field's own reason), or beside the control `fieldOf(failure)` names (a message about one
 * field that lists none: "Invalid credentials" to a password just typed); otherwise on the form's
 * own error line, by its submit button.
 */
export function showFailure(form, failure, fieldOf = () => null) {
  clearErrors(form);
  const reasons = new Map();
  for (const error of failure.errors || []) {
    if (error.field && !reasons.has(error.field)) reasons.set(error.field, error.message || "");
  }
  const concerned = fieldOf(failure);
  let placed = false;
  for (const wrapper of form.querySelectorAll(".field")) {
    const name = wrapper.dataset.field;
    if (!name || (name !== concerned && !reasons.has(name))) continue;
    const reason = reasons.get(name);
    // A message that is the field's own reason already ("Image is empty") is said once.
    wrapper.querySelector(".error").textContent = reason && reason !== failure.message
      ? `${failure.message}: ${reason}` : failure.message;
    wrapper.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
    placed = true;
  }
  const line = form.querySelector(".form-error");
  if (line && !placed) line.textContent = failure.message;
}

/** The line under a form's buttons where a message that names no field goes. */
// Runs an action of a form: its earlier errors cleared, a failure shown as the API words it.
export async function attempt(form, work, fieldOf = () => null) {
  clearErrors(form);
  try {
    await work();
  } catch (failure) {
    showFailure(form, failure, fieldOf);
  }
}

export function formError() {
  return h("p", { class: "error form-error", role: "alert" });
}

/**
 * The toolbar of a list screen: a search field labelled `searchLabel` and `choices` (`[label,
 * parameter, [[value, text], ...], chosen]`: an order, a status, a page size), all kept in the
 * address of `path`. Searching or changing a choice shows the first page; `go(offset)` shows
 * another page with the same choices.
 */
export function listToolbar(ctx, path, searchLabel, choices) {
  const box = h("input", { type: "search", value: ctx.params.get("search") || "", maxlength: 100, autocomplete: "off" });
  const selects = choices.map(([text, name, pairs, chosen]) => [text, name, h("select", {}, options(pairs, chosen))]);
  const form = h("form", { role: "search", class: "toolbar" },
    field(searchLabel, box, "search"),
    selects.map(([text, name, select]) => field(text, select, name)),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Search")),
    formError());
  const go = (offset) => ctx.navigate(path, { search: box.value.trim(),
    ...Object.fromEntries(selects.map(([, name, select]) => [name, select.value])), offset });
  form.addEventListener("submit", (event) => { event.preventDefault(); go(0); });
  for (const [, , select] of selects) select.addEventListener("change", () => go(0));
  return { form, go };
}

/** "Series 21–40 of 95" for a page `{max, from, to}`, focusable so that a new page can be announced. */
export function pageSummary(noun, page) {
  const text = page.max === 0 ? `No ${noun}` : `${noun[0].toUpperCase()}${noun.slice(1)} ${page.from + 1}–${page.to} of ${page.max}`;
  return h("p", { class: "summary", tabindex: "-1", "aria-live": "polite", "data-focus": "results" }, text);
}

/** Previous and Next buttons for a page `{max, from, to}` of `limit` items; `go(offset)` moves. */
export function pager(page, limit, go) {
  const previous = Math.max(0, page.from - limit);
  return h("nav", { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", disabled: page.from === 0, onclick: () => go(previous) }, "Previous page"),
    h("button", { type: "button", disabled: page.to >= page.max, onclick: () => go(page.to) }, "Next page"));
}

/**
 * A card section that draws its own content and can draw it again without the rest of the screen:
 * `fill(redraw, extra)` answers its children; `redraw(message, extra)` refills it, says `message`
 * in the section's own status line and moves focus there (the control that was used is gone).
 * `extra` is what one drawing alone may show (a token's secret, once). With `refreshers` (a list),
 * the section adds to it a function that draws it again from the API, for an action elsewhere that
 * changed what it shows; what the last drawing showed once stays.
 */
export async function liveSection(id, heading, fill, refreshers) {
  const section = h("section", { class: "card", "aria-labelledby": id });
  let shown;
  const redraw = async (message, extra) => {
    shown = extra;
    let content;
    try {
      content = await fill(redraw, extra);
    } catch (failure) {
      content = h("p", { class: "error", role: "alert" }, failure.message);
    }
    const status = h("p", { class: "notice", role: "status", tabindex: "-1" }, message || "");
    section.replaceChildren(h("h2", { id }, heading), status, ...[content].flat().filter(Boolean));
    if (message) status.focus();
  };
  await redraw();
  refreshers?.push(() => redraw(undefined, shown));
  return section;
}

// Every field two digits (a 24-hour clock), so that a time takes the same room whatever it is.
const DATE = { year: "numeric", month: "2-digit", day: "2-digit" };
const DATE_AND_TIME = { ...DATE, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };

/** A date and time the API gave (ISO 8601), in the reader's own words, as a <time> element; or "never". */
export function when(instant) {
  return instant ? h("time", { datetime: instant }, new Date(instant).toLocaleString(undefined, DATE_AND_TIME))
    : "never";
}

/** The day of an instant the API gave, in the reader's own words, as a <time> element. */
export function day(instant) {
  return h("time", { datetime: instant }, new Date(instant).toLocaleDateString(undefined, DATE));
}
