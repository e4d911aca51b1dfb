// The reader's figures: reading statistics (every entry, public and private) and collection
// statistics (what they own and paid).

import { get } from "./api.js";
import { h } from "./dom.js";
import { currentUser } from "./auth.js";
import { CLIENT, STATUSES } from "./vocabulary.js";

function figures(heading, rows) {
  const id = `${heading.toLowerCase().replace(/\W+/g, "-")}-heading`;
  return h("section", { class: "card", "aria-labelledby": id },
    h("h2", { id }, heading),
    h("dl", { class: "figures" }, rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])));
}

const or = (value, none) => (value === null || value === undefined ? none : value);

export async function statsScreen() {
  if (!currentUser()) {
    return [h("h1", {}, "Statistics"), h("p", {}, h("a", { href: "#/signin" }, "Sign in"), " to see your figures.")];
  }
  const [reading, collection] = await Promise.all([
    get("/user/reading-stats", { client: CLIENT }),
    get("/user/collection/stats/general", { client: CLIENT }),
  ]);
  return [
    h("h1", {}, "Statistics"),
    h("div", { class: "columns even" },
      figures("Reading statistics", [
        ["Entries", reading.entries],
        ...STATUSES.map(([value, text]) => [text, reading.by_status[value] || 0]),
        ["Volumes read", reading.volumes_read],
        ["Chapters read", reading.chapters_read],
        ["Rereads", reading.rereads],
        ["Mean score", or(reading.mean_score, "No scores yet")],
      ]),
      figures("Collection statistics", [
        ["Volumes owned", collection.total_items],
        ["Series owned", reading.collection.series_owned],
        ["Total spent", collection.total_spent.toFixed(2)],
        ["First bought", or(collection.first_buy, "–")],
        ["Last bought", or(collection.last_buy, "–")],
      ])),
  ];
}
