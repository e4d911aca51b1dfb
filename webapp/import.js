// Bringing a file into the account: a MyAnimeList manga export (then its undo) or a Tsundoku
// account file. Each is checked first (the API's dry run, which writes nothing), which shows what
// the file would do, then imported.

import { call } from "./api.js";
import { currentUser } from "./auth.js";
import { clearErrors, field, formError, h, options, showFailure } from "./dom.js";
import { ACCOUNT_MERGES, CLIENT, MERGES } from "./vocabulary.js";

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

/**
 * A card that brings a file into the account: Check asks the API for its dry run (which writes
 * nothing) and shows what the file would do, then the report's Import button applies it.
 * `run(file, mode, merge)` calls the API; `report(found)` answers the report's content and whether
 * it would change anything; `done(answer)` says what the applied import did (and where to go).
 */
function importCard({ id, heading, intro, fileLabel, accept, mergeLabel, merges, merge: chosen, checkLabel, importLabel,
  run, report: describe, done }) {
  const file = h("input", { type: "file", accept, required: true });
  const merge = h("select", {}, options(merges, chosen));
  // Not a live region: focus moves to its heading, which says what came.
  const report = h("div", { class: "report" });
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": id },
    h("h2", { id }, heading),
    h("p", { class: "muted" }, intro),
    h("div", { class: "grid wide" },
      field(fileLabel, file, "file"),
      field(mergeLabel, merge, "merge")),
    h("div", { class: "actions" }, h("button", { type: "submit" }, checkLabel)),
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
      done(await run(file.files[0], "apply", merge.value));
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
      const { content, changes } = describe(await run(file.files[0], "dry-run", merge.value));
      const go = h("button", { type: "button" }, importLabel);
      go.addEventListener("click", () => apply(go));
      report.replaceChildren(
        h("h3", { tabindex: "-1", "data-focus": "report" }, "What the import would do"), ...[content].flat(),
        changes ? h("div", { class: "actions" }, go) : h("p", {}, "Nothing to import: your account has all of it."));
      report.querySelector("[data-focus=report]").focus();
    } catch (failure) {
      showFailure(form, failure, fileProblem);
    } finally {
      check.disabled = false;
    }
  });
  return form;
}

function malCard(ctx) {
  return importCard({
    id: "mal-heading", heading: "From MyAnimeList",
    intro: "Your manga list export (XML, or the .xml.gz MyAnimeList gives). Check shows what it would do and "
      + "changes nothing.",
    fileLabel: "MyAnimeList export", accept: ".xml,.gz,application/xml,text/xml,application/gzip",
    mergeLabel: "A series already on your list", merges: MERGES, merge: "greater",
    checkLabel: "Check", importLabel: "Import", run: importMal,
    report: (found) => ({ content: [figures(found.counts), h("div", {}, skippedList(found))],
      changes: found.counts.add + found.counts.update > 0 }),
    done: (applied) => {
      // The import's id goes into the address (it is no secret: another user's is not found), so
      // that its undo is still offered after a look at the list and Back.
      const said = `Imported: ${applied.counts.add} added, ${applied.counts.update} updated`;
      if (applied.import_id) ctx.navigate("/import", { undo: applied.import_id }, said);
      else ctx.navigate("/import", {}, `${said}; nothing to undo`);
    },
  });
}

// The account file's lists, as its report names them, and the words for them.
const ACCOUNT_LISTS = [["reading_statuses", "Reading list"], ["ratings", "Ratings"], ["collection", "Collection"],
  ["settings", "Settings"]];

/** What an account file does to each list: a table, one row a list. */
function accountReport(found) {
  const kept = found.merge === "keep";
  const count = (value) => (Array.isArray(value) ? value.length : value);
  // What is skipped (series not in this catalog, ratings the account may not give) only when some is.
  const skipped = [["unknown", "Not in the catalog"], ["refused", "Not allowed"]]
    .filter(([column]) => ACCOUNT_LISTS.some(([key]) => count(found[key][column]) > 0));
  const columns = [["add", "To add"], kept ? ["kept", "Left as they are"] : ["change", "To replace"],
    ["unchanged", "Unchanged"], ...skipped];
  const table = h("table", { class: "counts" }, h("caption", {}, "Entries by list"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "List"),
      columns.map(([, text]) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, ACCOUNT_LISTS.map(([key, text]) => h("tr", {}, h("th", { scope: "row" }, text),
      columns.map(([column]) => h("td", {}, count(found[key][column])))))));
  const changes = ACCOUNT_LISTS.some(([key]) => found[key].add + found[key].change > 0);
  // A narrow screen scrolls the table, not the page.
  return { content: h("div", { class: "table-scroll" }, table), changes };
}

function accountFileCard(ctx) {
  return importCard({
    id: "account-file-heading", heading: "From a Tsundoku account file",
    intro: "The file Export my account gives (on your profile), from this account or another one. Entries only "
      + "your account has stay; Check shows what the file would do and changes nothing.",
    fileLabel: "Account file", accept: ".json,application/json",
    mergeLabel: "An entry your account has already", merges: ACCOUNT_MERGES, merge: "keep",
    checkLabel: "Check account file", importLabel: "Import account file",
    run: (file, mode, merge) => call("POST", "/user/import", { query: { mode, merge }, file, type: "application/json" }),
    report: accountReport,
    done: (applied) => {
      const added = ACCOUNT_LISTS.reduce((sum, [key]) => sum + applied[key].add, 0);
      const replaced = ACCOUNT_LISTS.reduce((sum, [key]) => sum + applied[key].change, 0);
      ctx.navigate("/import", {}, `Account file imported: ${added} added, ${replaced} replaced`);
    },
  });
}

export async function importScreen(ctx) {
  if (!currentUser()) {
    return [h("h1", {}, "Import"), h("p", {}, h("a", { href: "#/signin" }, "Sign in"), " to import a list.")];
  }
  const undo = ctx.params.get("undo");
  return [h("h1", {}, "Import"), undo ? undoCard(ctx, undo) : null, malCard(ctx), accountFileCard(ctx)];
}
