// What a frontend writes against the generated types (tsundoku-api.d.ts, made by `make ts-client`).
// `tsc` checks it: a field renamed, removed or retyped in /openapi.json breaks this file.
import type { components, paths } from "./tsundoku-api";

type Schemas = components["schemas"];
type Json<T> = T extends { content: { "application/json": infer B } } ? B : never;

// A reading status, in the spec's form and in the forms the web client also sends.
const status: Schemas["ReadingStatusBody"] = {
  visibility: "public", progress_type: "volumes", progress: 3, status: "started", priority: "high", client: 1,
};
const keyed: Schemas["ReadingStatusBody"] = { ...status, status: { key: "planned" }, client: "1" };

// @ts-expect-error: not a status
const wrong: Schemas["ReadingStatusBody"] = { ...status, status: "reading" };

// The reading history's page, and a public profile's statistics.
type HistoryPage = Json<paths["/user/reading-history"]["get"]["responses"][200]>;
const page: HistoryPage = { series: [], max: 0, from: 0, to: 0 };
type Profile = Json<paths["/users/{slug}"]["get"]["responses"][200]>;
function completedIn(profile: Profile, year: string): number {
  return profile.stats.completed_by_year[year] ?? 0;
}

// A status that may not exist is null, and the type says so.
type OwnStatus = Json<paths["/user/reading-status/id/{id}"]["get"]["responses"][200]>;
function progressOf(found: OwnStatus): number {
  return found === null ? 0 : found.progress;
}

// Every error is one shape.
type ErrorAnswer = Json<paths["/user/reading-status/add/{id}"]["post"]["responses"][409]>;
const conflict: ErrorAnswer = { data: "Reading status already exists for this series", code: 409 };

export { keyed, wrong, page, completedIn, progressOf, conflict };
