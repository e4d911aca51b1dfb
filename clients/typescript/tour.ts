// A reader's whole use of the service through openapi-fetch and the types openapi-typescript made
// from /openapi.json (tsundoku-api.d.ts): no request is written by hand, every path, parameter,
// body and answer is typed by the document, and `tsc` refuses a call the document does not allow.
// tests/test_generated_typescript_client.py compiles it and runs it with Node against the service:
//   TSUNDOKU_URL=http://127.0.0.1:4545 TSUNDOKU_AVATAR=<base64 PNG> node tour.js
import createClient from "openapi-fetch";
import type { paths } from "./tsundoku-api";

// Node's own, declared here so that the tour needs no @types/node.
declare const process: { env: Record<string, string | undefined> };

const baseUrl = process.env.TSUNDOKU_URL ?? "http://127.0.0.1:4545";
const avatar = process.env.TSUNDOKU_AVATAR ?? "";

function expect(condition: boolean, what: string, detail?: unknown): void {
  if (!condition) {
    throw new Error(`${what}: ${JSON.stringify(detail)}`);
  }
}

const anonymous = createClient<paths>({ baseUrl });
const credentials = { username: "ts-reader", password: "correct horse" };
const registered = await anonymous.POST("/auth/register", { body: credentials });
expect(registered.response.status === 201, "sign up", registered.error);
const signedIn = await anonymous.POST("/auth/login", { body: credentials });
expect(signedIn.data !== undefined, "sign in", signedIn.error);
const token = signedIn.data!.accessToken;

const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
const me = await api.GET("/user/me");
expect(me.data?.username === "ts-reader", "profile", me.error);
const userId = me.data!.id;

// A reading status, added then updated, and the history that shows it.
const status = {
  visibility: "public", progress_type: "volumes", progress: 1, status: "started", priority: "high", client: 1,
  start: "2024-05",
} as const;
const series = { params: { path: { id: "1" } } };
const added = await api.POST("/user/reading-status/add/{id}", { ...series, body: status });
expect(added.response.status === 200, "status added", added.error);
const updated = await api.POST("/user/reading-status/update/{id}", {
  ...series, body: { ...status, progress: 3, status: "completed" },
});
expect(updated.response.status === 200, "status updated", updated.error);
const history = await api.GET("/user/reading-history", { params: { query: { client: 1, order: "name-asc" } } });
const entry = history.data?.series[0]?.["reading-history"];
expect(history.data?.max === 1 && entry?.progress === 3 && entry.status === "completed", "history", history.data);

// A rating, the collection, the settings.
const rated = await api.POST("/user/series-rating/add/{id}", { ...series, body: { rating: 8.5 } });
expect(rated.response.status === 200, "rated", rated.error);
const rating = await api.GET("/user/series-rating/{id}", series);
expect(rating.data?.rating === 8.5, "rating", rating.data);
const bought = await api.POST("/user/collection/add/{id}", {
  params: { path: { id: "11" } }, body: { price: 9.99, date: "2024-05-17" },
});
expect(bought.data?.item_id !== undefined, "collection item added", bought.error);
const collection = await api.GET("/user/collection", { params: { query: { client: 1 } } });
expect(collection.data?.volumes[0]?.collection.price === 9.99, "collection", collection.data);
const saved = await api.POST("/users/{id}/save-settings", { params: { path: { id: userId } }, body: { theme: "dark" } });
expect(saved.response.status === 200, "settings saved", saved.error);

// An avatar up, and back as an image.
const uploaded = await api.POST("/user/update-image/{id}", { params: { path: { id: userId } }, body: { image: avatar } });
expect(uploaded.response.status === 200, "avatar uploaded", uploaded.error);
const image = await api.GET("/user/avatar/{id}/{res}", {
  params: { path: { id: userId, res: "scaled" } }, parseAs: "blob",
});
expect(image.response.headers.get("Content-Type") === "image/webp" && (image.data as Blob).size > 0, "avatar", null);

// The figures.
const figures = await api.GET("/user/reading-stats", { params: { query: { client: 1 } } });
expect(figures.response.status === 200, "reading figures", figures.error);
const spent = await api.GET("/user/collection/stats/general", { params: { query: { client: 1 } } });
expect(spent.data?.total_spent === 9.99, "collection figures", spent.data);

// The account file, and the MyAnimeList file taken back in as a dry run.
const exported = await api.GET("/user/export");
expect(exported.data?.profile?.username === "ts-reader" && exported.data.settings?.theme === "dark", "export",
  exported.data);
const malFile = await api.GET("/user/export/mal", { parseAs: "text" });
expect(typeof malFile.data === "string" && malFile.data.includes("<myanimelist>"), "MAL export", malFile.error);
const dryRun = await api.POST("/user/import/mal", {
  params: { query: { mode: "dry-run" } },
  body: malFile.data as string,
  bodySerializer: (file) => file,
  headers: { "Content-Type": "application/octet-stream" },
});
expect(dryRun.data?.applied === false && dryRun.data.counts.unchanged === 1, "MAL dry run", dryRun.data ?? dryRun.error);

console.log("tour complete");
