// The reader's own account: profile image, settings, the password, where they are signed in,
// personal tokens, the account file, and deleting the account. Each part is a section that redraws alone, so an
// action in one leaves what another shows (a token's secret above all) as it was.

import { del, get, post } from "./api.js";
import { confirmSession, currentUser, deleteAccount, loadSession } from "./auth.js";
import { clearErrors, field, formError, h, liveSection, newId, options, showFailure, when } from "./dom.js";
import { SCOPES, SETTINGS, label } from "./vocabulary.js";

const IMAGE_TYPES = "image/png,image/jpeg,image/webp,image/gif";

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("The file could not be read"));
    reader.readAsDataURL(file);
  });
}

/** Runs `action` for a form's submit button, with the API's failure shown where it belongs. */
function onSubmit(form, action, fieldOf) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await action();
    } catch (failure) {
      showFailure(form, failure, fieldOf);
      button.disabled = false;
    }
  });
}

function imageSection() {
  return liveSection("image-heading", "Avatar", (redraw) => {
    const user = currentUser();
    const file = h("input", { type: "file", accept: IMAGE_TYPES, required: true });
    const form = h("form", { novalidate: true },
      user.profile_image
        ? h("img", { class: "avatar", src: user.profile_image, alt: "Your profile image", width: 128, height: 128 })
        : h("p", { class: "muted" }, "No profile image yet."),
      field("Profile image", file, "image"),
      h("p", { class: "muted" }, "JPEG, PNG, WebP or GIF, at most 8 MB."),
      h("div", { class: "actions" },
        h("button", { type: "submit" }, "Upload image"),
        user.profile_image ? h("button", { type: "button", class: "secondary", onclick: remove }, "Remove image") : null),
      formError());
    async function remove() {
      clearErrors(form);
      try {
        await del(`/user/delete-image/${encodeURIComponent(user.id)}`);
        await loadSession();
        await redraw("Profile image removed");
      } catch (failure) {
        showFailure(form, failure);
      }
    }
    // Every refusal of an upload is about the file: its message goes beside the file input.
    onSubmit(form, async () => {
      const chosen = file.files[0];
      // No file chosen: sent as it is, for the API to say what it makes of an empty image.
      const image = chosen ? await readAsDataUrl(chosen) : "";
      await post(`/user/update-image/${encodeURIComponent(user.id)}`, { image });
      await loadSession();
      await redraw("Profile image saved");
    }, (failure) => (failure.status === 400 || failure.status === 413 ? "image" : null));
    return form;
  });
}

function settingControl(key, kind, value) {
  if (kind === "color") return h("input", { type: "color", value });
  if (kind === "boolean") return h("input", { type: "checkbox", checked: value === true });
  return h("select", {}, options(kind, value));
}

function settingValue(control) {
  return control.type === "checkbox" ? control.checked : control.value;
}

function settingsSection() {
  return liveSection("settings-heading", "Settings", (redraw) => {
    const user = currentUser();
    const stored = user.settings || {};
    const controls = new Map();
    const fields = SETTINGS.filter(([key]) => key in stored).map(([key, text, kind]) => {
      const control = settingControl(key, kind, stored[key]);
      controls.set(key, control);
      const wrapper = field(text, control, key);
      if (kind === "boolean") wrapper.classList.add("check");
      return wrapper;
    });
    const form = h("form", { novalidate: true }, h("div", { class: "grid wide" }, fields),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Save settings")),
      formError());
    // Only the settings changed here are sent: one left alone is not asserted again (an 18+ mode
    // an account kept after losing its age verification stays as the API decides).
    onSubmit(form, async () => {
      const changed = {};
      for (const [key, control] of controls) {
        if (settingValue(control) !== stored[key]) changed[key] = settingValue(control);
      }
      await post(`/users/${encodeURIComponent(user.id)}/save-settings`, changed);
      await loadSession();
      await redraw("Settings saved");
    }, (failure) => (failure.status === 403 ? "nsfw-mode" : null));  // 403: 18+ needs age verification
    return form;
  });
}

/**
 * The password, changed with the current one. The API then ends every other session and the
 * personal tokens they made (this session and its tokens stay): `changed()` draws those sections again.
 */
function passwordSection(changed) {
  return liveSection("password-heading", "Change password", (redraw) => {
    const current = h("input", { type: "password", autocomplete: "current-password", required: true, maxlength: 128 });
    const next = h("input", { type: "password", autocomplete: "new-password", required: true, maxlength: 128 });
    const form = h("form", { novalidate: true },
      h("div", { class: "grid wide" }, field("Current password", current, "current_password"),
        field("New password", next, "new_password")),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Change password")),
      formError());
    // A wrong current password (401) and too many attempts (429) are about the current password;
    // a new one the API refuses (422) names `new_password` in its errors.
    onSubmit(form, async () => {
      await post("/auth/change-password", { current_password: current.value, new_password: next.value });
      await redraw("Password changed. Your other sessions are signed out.");
      await changed();
    }, (failure) => (failure.status === 401 || failure.status === 429 ? "current_password" : null));
    return [h("p", { class: "muted" }, "Every other session ends, with the personal tokens they made; this one stays."),
      form];
  });
}

function sessionsSection(refreshers) {
  return liveSection("sessions-heading", "Where you are signed in", async (redraw) => {
    const { sessions } = await get("/auth/sessions");
    return h("ul", { class: "rows" }, sessions.map((session) => {
      const line = formError();
      const end = async () => {
        try {
          await del(`/auth/sessions/${encodeURIComponent(session.id)}`);
          await redraw("Session signed out");
        } catch (failure) {
          line.textContent = failure.message;
        }
      };
      return h("li", { class: "row" },
        h("div", {},
          h("p", { class: "strong" }, session.user_agent || "Unknown device",
            session.current ? h("span", { class: "badge current" }, "This session") : null),
          h("p", { class: "muted" }, `${session.address || "Unknown address"} · last seen `, when(session.last_seen),
            " · signed in ", when(session.created))),
        session.current ? null : h("button", { type: "button", class: "secondary", onclick: end }, "Sign out this session"),
        line);
    }));
  }, refreshers);
}

function newTokenNotice(created) {
  const id = newId("token");
  return h("div", { class: "secret", role: "group", "aria-labelledby": id },
    h("p", { id, class: "strong" }, `Your new token “${created.name}”`),
    h("code", { class: "token" }, created.token),
    h("p", {}, "Copy it now: it is shown only once. This page does not keep it, and the service keeps only its hash."));
}

function tokensSection(refreshers) {
  return liveSection("tokens-heading", "Personal tokens", async (redraw, created) => {
    const { tokens } = await get("/auth/tokens");
    const name = h("input", { type: "text", maxlength: 100, autocomplete: "off", required: true });
    const days = h("input", { type: "number", min: 1, max: 366, step: 1, value: 30, inputmode: "numeric" });
    const scopeId = newId("scopes");
    const scopes = SCOPES.map(([value, text]) => {
      const box = h("input", { type: "checkbox", value, id: newId(`scope-${value}`), checked: value === "read" });
      return [box, h("label", { class: "check", for: box.id }, box, ` ${text}`)];
    });
    const scopeError = h("p", { class: "error", id: `${scopeId}-error`, "aria-live": "polite" });
    const scopeField = h("fieldset", { class: "field", "aria-describedby": scopeError.id },
      h("legend", {}, "Scopes"), scopes.map(([, item]) => item), scopeError);
    scopeField.dataset.field = "scopes";
    const form = h("form", { novalidate: true, "aria-label": "New personal token" },
      h("div", { class: "grid wide" }, field("Token name", name, "name"), field("Days until it expires", days,
        "expires_in_days")),
      scopeField,
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Create token")),
      formError());
    onSubmit(form, async () => {
      const made = await post("/auth/tokens", { name: name.value,
        scopes: scopes.filter(([box]) => box.checked).map(([box]) => box.value),
        expires_in_days: days.value === "" ? null : Number(days.value) });
      await redraw("Token created", made);
    });
    const list = tokens.length === 0 ? h("p", { class: "muted" }, "No personal tokens.")
      : h("ul", { class: "rows" }, tokens.map((token) => {
        const line = formError();
        const revoke = async () => {
          try {
            await del(`/auth/tokens/${encodeURIComponent(token.id)}`);
            await redraw(`Token “${token.name}” revoked`);
          } catch (failure) {
            line.textContent = failure.message;
          }
        };
        return h("li", { class: "row" },
          h("div", {},
            h("p", { class: "strong" }, token.name),
            h("p", { class: "muted" }, `${token.scopes.map((s) => label(SCOPES, s)).join(", ")} · made `,
              when(token.created), " · expires ", when(token.expires), " · last used ", when(token.last_used))),
          h("button", { type: "button", class: "secondary", "aria-label": `Revoke ${token.name}`, onclick: revoke },
            "Revoke"),
          line);
      }));
    return [
      h("p", { class: "muted" }, "For apps and scripts that use the API for you: sent as ",
        h("code", {}, "Authorization: Bearer …"), ". A token cannot change your password, settings or tokens."),
      created ? newTokenNotice(created) : null,
      form, list,
    ];
  }, refreshers);
}

/**
 * A link the browser downloads (the API's Content-Disposition names the file), followed only once
 * the session is confirmed: a link cannot see its answer, and with the session ended the browser
 * would save the API's 401 as the file.
 */
function downloadLink(href, text, className, line) {
  const link = h("a", { class: className, href, download: "" }, text);
  let confirmed = false;
  link.addEventListener("click", async (event) => {
    if (confirmed) {
      confirmed = false;  // the click made below: the browser downloads
      return;
    }
    event.preventDefault();
    line.textContent = "";
    try {
      confirmed = await confirmSession();  // ended: the app shows itself signed out instead
    } catch (failure) {
      line.textContent = failure.message;
    }
    if (confirmed) link.click();
  });
  return link;
}

function exportSection() {
  const line = formError();
  return h("section", { class: "card", "aria-labelledby": "export-heading" },
    h("h2", { id: "export-heading" }, "Your data"),
    h("p", {}, "Everything your account holds, as one JSON file that an import takes back."),
    h("div", { class: "actions" },
      downloadLink("/user/export", "Export my account", "button", line),
      downloadLink("/user/export/mal", "Export my list for MyAnimeList", "button secondary", line)),
    line);
}

function deleteSection(ctx) {
  const password = h("input", { type: "password", autocomplete: "current-password", required: true, maxlength: 128 });
  const form = h("form", { class: "card danger", novalidate: true, "aria-labelledby": "delete-heading" },
    h("h2", { id: "delete-heading" }, "Delete my account"),
    h("p", {}, "Your list, ratings, collection, image, sessions and tokens are deleted at once; it cannot be undone."),
    field("Password", password, "password"),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "danger" }, "Delete my account")),
    formError());
  // Invalid credentials (401) and too many attempts (429) are about the password just typed.
  onSubmit(form, async () => {
    await deleteAccount(password.value);
    ctx.navigate("/signin", {}, "Account deleted");
  }, (failure) => (failure.status === 401 || failure.status === 429 ? "password" : null));
  return form;
}

export async function profileScreen(ctx) {
  const user = currentUser();
  if (!user) {
    return [h("h1", {}, "Profile"), h("p", {}, h("a", { href: "#/signin" }, "Sign in"), " to see your profile.")];
  }
  // What a password change ends: the other sessions, and the tokens they made.
  const ended = [];
  const sections = await Promise.all([imageSection(), settingsSection(), sessionsSection(ended), tokensSection(ended),
    passwordSection(() => Promise.all(ended.map((refresh) => refresh())))]);
  const [image, settings, sessions, tokens, password] = sections;
  return [
    h("h1", {}, "Profile"),
    h("p", {}, `Signed in as ${user.username}. `,
      h("a", { href: `#/users/${encodeURIComponent(user.slug)}` }, "Your public page")),
    h("div", { class: "columns even" }, image, settings),
    sessions, tokens, password,
    h("div", { class: "columns even" }, exportSection(), deleteSection(ctx)),
  ];
}
