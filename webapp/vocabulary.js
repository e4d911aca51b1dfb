// The API's enum values and the words the app shows for them (docs/api.md, "Routes").

export const STATUSES = [
  ["started", "Reading"],
  ["completed", "Completed"],
  ["paused", "Paused"],
  ["dropped", "Dropped"],
  ["planned", "Plan to read"],
];

export const PRIORITIES = [["low", "Low"], ["mid", "Medium"], ["high", "High"]];
export const VISIBILITIES = [["private", "Private"], ["public", "Public"]];
export const PROGRESS_TYPES = [["volumes", "Volumes"], ["chapters", "Chapters"]];

export const HISTORY_ORDERS = [
  ["update-desc", "Recently updated"],
  ["update-asc", "Least recently updated"],
  ["name-asc", "Title A–Z"],
  ["name-desc", "Title Z–A"],
  ["priority-desc", "Priority, high first"],
  ["priority-asc", "Priority, low first"],
  ["score-desc", "Score, high first"],
  ["score-asc", "Score, low first"],
  ["start-date-desc", "Started, newest first"],
  ["start-date-asc", "Started, oldest first"],
  ["end-date-desc", "Finished, newest first"],
  ["end-date-asc", "Finished, oldest first"],
];

// GET /users `order`.
export const READER_ORDERS = [
  ["name-asc", "Name A–Z"],
  ["name-desc", "Name Z–A"],
  ["registered-desc", "Newest first"],
  ["registered-asc", "Oldest first"],
];

export const PAGE_SIZES = [[10, "10"], [20, "20"], [50, "50"], [100, "100"]];

// Ratings are 1 to 10 in steps of 0.5.
export const RATINGS = Array.from({ length: 19 }, (_, i) => 1 + i / 2).map((r) => [r, String(r)]);

export const label = (pairs, value) => (pairs.find(([v]) => String(v) === String(value)) || [value, value])[1];

// The catalog's client: this instance serves one (the API has no route that lists them).
export const CLIENT = 1;

// The user's settings (POST /users/{id}/save-settings): each key, its label, and its values.
// `color` and `boolean` settings take a colour picker and a checkbox.
export const SETTINGS = [
  ["theme", "Theme", [["system", "Same as the system"], ["light", "Light"], ["dark", "Dark"]]],
  ["view-mode", "View mode", [["column", "Columns"], ["list", "List"], ["grid", "Grid"]]],
  ["nsfw-mode", "Mature content", [["settings.nsfw.hide-nsfw", "Hide"], ["settings.nsfw.show-nsfw", "Show"],
    ["settings.nsfw.show-nsfw-18", "Show, 18+ included (age-verified accounts)"]]],
  ["prefered-content-language", "Preferred content language", [["interface", "Same as the interface"],
    ["en", "English"], ["de", "German"], ["fr", "French"], ["it", "Italian"], ["es", "Spanish"],
    ["jpn", "Japanese"], ["kor", "Korean"]]],
  ["collection-visibility", "Collection on my public page", [["private", "Hidden"], ["public", "Shown (never prices)"]]],
  ["theme-accent-color", "Accent colour", "color"],
  ["show-drag-indicator", "Show the drag indicator", "boolean"],
];

export const SCOPES = [["read", "Read"], ["write", "Write (includes read)"]];

// MAL import `merge`: what happens to a series already on the list.
export const MERGES = [
  ["greater", "Keep the furthest progress of the two"],
  ["keep", "Leave it as it is"],
  ["replace", "Take the file's entry"],
];

// Account file import `merge`: what happens to an entry the account has with other values.
export const ACCOUNT_MERGES = [
  ["keep", "Leave it as it is"],
  ["replace", "Take the file's entry"],
];
