// Signing up, in and out. The sign-in's answer carries an access token; it is dropped on the
// spot: the HttpOnly cookie the same answer sets is all this page needs.

import { call, del, get, post, whenUnauthorized } from "./api.js";
import { field, formError, h, showFailure, clearErrors } from "./dom.js";

let user = null;
let sessionEnded = () => {};
let confirming = null;

/** The signed-in user (never a token), or null. */
export const currentUser = () => user;

/** `handler()` runs when the session is found to have ended: the app shows itself signed out. */
export function whenSessionEnds(handler) {
  sessionEnded = handler;
}

/**
 * Whether the session still holds (GET /auth/me). One that has ended (signed out on another
 * device, by a password change, expired) leaves nobody signed in here, and the app is told.
 * Calls made at once share one check.
 */
export function confirmSession() {
  confirming ??= (async () => {
    const before = user;
    await loadSession();
    if (before && !user) sessionEnded();
    return user !== null;
  })().finally(() => { confirming = null; });
  return confirming;
}

// A 401 to a call made signed in means the session has ended, or only that a password typed here
// was wrong (sign-in, deleting the account, changing the password): asking the API tells them apart.
whenUnauthorized(async (path) => {
  if (user && path !== "/auth/me") await confirmSession().catch(() => null);
});

/** Who the cookie says we are: GET /auth/me, or nobody. */
export async function loadSession() {
  try {
    user = (await get("/auth/me")).user;
  } catch (failure) {
    if (failure.status !== 401) throw failure;
    user = null;
  }
  return user;
}

async function signIn(username, password) {
  user = (await post("/auth/login", { username, password })).user;
}

export async function signOut() {
  try {
    await call("POST", "/auth/logout");
  } catch (failure) {
    if (failure.status !== 401) throw failure;  // a session that had ended already is signed out too
  } finally {
    user = null;
  }
}

/** Deletes the account; the API asks for the password again and clears the cookie. */
export async function deleteAccount(password) {
  await del("/user/account", { password });
  user = null;
}

function credentialsForm(ctx, { heading, button, passwordAutocomplete, submit, fieldOf, other }) {
  const username = h("input", { type: "text", autocomplete: "username", required: true, autocapitalize: "none",
    spellcheck: "false", maxlength: 32 });
  const password = h("input", { type: "password", autocomplete: passwordAutocomplete, required: true,
    maxlength: 128 });
  const form = h("form", { class: "card narrow", novalidate: true },
    field("Username", username, "username"),
    field("Password", password, "password"),
    h("div", { class: "actions" }, h("button", { type: "submit" }, button)),
    formError());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const done = form.querySelector("button[type=submit]");
    done.disabled = true;
    try {
      await submit(username.value, password.value);
      ctx.navigate("/list");
    } catch (failure) {
      showFailure(form, failure, fieldOf);
      done.disabled = false;
    }
  });
  return [h("h1", {}, heading), form, other];
}

export function signInScreen(ctx) {
  return credentialsForm(ctx, {
    heading: "Sign in", button: "Sign in", passwordAutocomplete: "current-password",
    submit: signIn, fieldOf: () => null,
    other: h("p", {}, "No account yet? ", h("a", { href: "#/signup" }, "Create one")),
  });
}

export function signUpScreen(ctx) {
  return credentialsForm(ctx, {
    heading: "Sign up", button: "Sign up", passwordAutocomplete: "new-password",
    // Registering does not sign in (docs/api.md): the app signs in next, with the same words.
    submit: async (username, password) => {
      await post("/auth/register", { username, password });
      await signIn(username, password);
    },
    other: h("p", {}, "Already have an account? ", h("a", { href: "#/signin" }, "Sign in instead")),
  });
}
