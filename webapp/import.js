// Bringing a MyAnimeList manga export into the list: a check first (the API's dry run, which
// writes nothing) that shows what the file would do, then the import itself, then its undo.

import { call } from "./api.js";
import { currentUser } from "./auth.js";
import { clearErrors, field, formError, h, options, showFailure } from "./dom.js";
import { CLIENT, MERGES } from "./vocabulary.js";

// The report lists every entry the file could not bring; past this many the rest are counted.
const SHOWN_SKIPPED = 200;

function importMal(file, mode, merge) {
  // Plain or gzipped XML: the API tells them apart by their first bytes; the type only picks the
  // body's limit (10 MB gzipped, 50 MB of XML).
  const type = /\.gz$/i.test(file.name) ? "application/gzip" : "application/xml";
  return call("POST", "/user/import/mal", { query: { mode, merge, client: CLIENT }, file, type });
}

function figures(counts) {
  const rows = [["Entries in the file", counts.entries], ["To add", counts.add], ["To update", counts.update],
    ["Unchanged", counts.unchanged], ["Not imported", counts.skipped]];
  return h("dl", { class: "figures" }, rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function skippedList(report) {
  const skipped = report.entries.filter((entry) => entry.action === "skipped");
  if (skipped.length === 0) return null;
  const shown = skipped.slice(0, SHOWN_SKIPPED);
  return [
    h("h3", {}, "Not imported"),
    h("ul", { class: "rows" }, shown.map((entry) => h("li", {},
      h("span", { class: "strong" }, entry.title || "(no title)"), ` (line ${entry.line}): ${entry.reason}`))),
    skipped.length > shown.length ? h("p", { class: "muted" }, `and ${skipped.length - shown.length} more`) : null,
  ];
}

function undoCard(ctx, importId) {
  const form = h("form", { class: "card", "aria-labelledby": "undo-heading" },
    h("h2", { id: "undo-heading" }, "Your import"),
    h("p", {}, "Undo takes it back: entries it added are removed and entries it changed are restored, unless you "
      + "changed them since. An import can be undone for 30 days."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "secondary" }, "Undo import")),
    formError());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      const undone = await call("POST", `/user/import/${encodeURIComponent(importId)}/undo`);
      const left = undone.left.length ? `; ${undone.left.length} left as you changed them since` : "";
      ctx.navigate("/import", {}, `Import undone: ${undone.removed} removed, ${undone.restored} restored${left}`);
    } catch (failure) {
      showFailure(form, failure);
    }
  });
  return form;
}

export async function importScreen(ctx) {
  if (!currentUser()) {
    return [h("h1", {}, "Import"), h("p", {}, h("a", { href: "#/signin" }, "Sign in"), " to import a list.")];
  }
  const file = h("input", { type: "file", accept: ".xml,.gz,application/xml,text/xml,application/gzip", required: true });
  const merge = h("select", {}, options(MERGES, "greater"));
  // Not a live region: focus moves to its heading, which says what came.
  const report = h("div", { class: "report" });
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "mal-heading" },
    h("h2", { id: "mal-heading" }, "From MyAnimeList"),
    h("p", { class: "muted" }, "Your manga list export (XML, or the .xml.gz MyAnimeList gives). Check shows what it "
      + "would do and changes nothing."),
    h("div", { class: "grid wide" },
      field("MyAnimeList export", file, "file"),
      field("A series already on your list", merge, "merge")),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Check")),
    formError(), report);
  // A refusal of the file (400 with its line, 413, 415) is about the file, whatever part of it
  // its `errors` name; a bad `merge` names that control itself.
  const fileProblem = (failure) => ([400, 413, 415].includes(failure.status)
    && !failure.errors.some((error) => error.field === "merge") ? "file" : null);
  // A report is of the file and merge it was made for: another choice asks for a new check.
  const forget = () => report.replaceChildren();
  file.addEventListener("change", forget);
  merge.addEventListener("change", forget);

  async function apply(button) {
    clearErrors(form);
    button.disabled = true;
    try {
      const done = await importMal(file.files[0], "apply", merge.value);
      // The import's id goes into the address (it is no secret: another user's is not found), so
      // that its undo is still offered after a look at the list and Back.
      const applied = `Imported: ${done.counts.add} added, ${done.counts.update} updated`;
      if (done.import_id) ctx.navigate("/import", { undo: done.import_id }, applied);
      else ctx.navigate("/import", {}, `${applied}; nothing to undo`);
    } catch (failure) {
      showFailure(form, failure, fileProblem);
      button.disabled = false;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    forget();
    if (!file.files[0]) {
      showFailure(form, { message: "Choose the file to check", errors: [] }, () => "file");
      return;
    }
    const check = form.querySelector("button[type=submit]");
    check.disabled = true;
    try {
      const found = await importMal(file.files[0], "dry-run", merge.value);
      const changes = found.counts.add + found.counts.update;
      const go = h("button", { type: "button" }, "Import");
      go.addEventListener("click", () => apply(go));
      report.replaceChildren(
        h("h3", { tabindex: "-1", "data-focus": "report" }, "What the import would do"),
        figures(found.counts), h("div", {}, skippedList(found)),
        changes ? h("div", { class: "actions" }, go) : h("p", {}, "Nothing to import: your list has all of it."));
      report.querySelector("[data-focus=report]").focus();
    } catch (failure) {
      showFailure(form, failure, fileProblem);
    } finally {
      check.disabled = false;
    }
  });
  const undo = ctx.params.get("undo");
  return [h("h1", {}, "Import"), undo ? undoCard(ctx, undo) : null, form];
}
