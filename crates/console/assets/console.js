// The console: the consent notice first, then sign-in, then the views. The banners show the join of the
// session's label and every label on the screen; content is shown only once the banners cover it.

import { json, useToken } from "./api.js";
import { AskView } from "./ask.js";

const $ = (id) => document.getElementById(id);
const BANNERS = ["classification-banner-top", "classification-banner-bottom"];

/** What is on the screen, by a key of its view's choosing: arrays of label JSON objects. */
const shown = new Map();
let session = null;

function paint(banner) {
  for (const id of BANNERS) {
    const element = $(id);
    element.textContent = banner.marking;
    element.dataset.marking = banner.marking;
    element.dataset.label = JSON.stringify(banner.label);
    element.style.backgroundColor = banner.background;
    element.style.color = banner.text;
  }
}

async function repaint() {
  const labels = [session.label, ...[...shown.values()].flat()];
  paint(await json("/console/api/banner", { method: "POST", body: { labels } }));
}

/** The screen, as views see it: put labels on it (the banners rise first) and take them off. */
export const screen = {
  /** Raises the banners to cover `labels` under `key`; resolves once they do (throws if they cannot). */
  async show(key, labels) {
    shown.set(key, labels);
    try {
      await repaint();
    } catch (error) {
      shown.delete(key);
      throw error;
    }
  },
  /** Forgets what `key` showed, once its content is gone from the screen. */
  async clear(key) {
    if (shown.delete(key)) await repaint();
  },
};

function view(id) {
  for (const section of document.querySelectorAll("main > .view")) section.hidden = section.id !== id;
}

function acceptNotice(text) {
  $("notice-text").textContent = text;
  view("notice-view");
  $("accept-notice").focus();
  return new Promise((resolve) => $("accept-notice").addEventListener("click", resolve, { once: true }));
}

async function signIn(token) {
  const error = $("sign-in-error");
  error.textContent = "";
  useToken(token);
  try {
    session = await json("/console/api/session");
  } catch (failure) {
    useToken(null);
    error.textContent = failure.message;
    return;
  }
  $("token").value = "";
  paint(session.banner);
  $("who-subject").textContent = session.subject;
  $("who-nation").textContent = session.nation;
  $("who-clearance").textContent = session.clearance_marking;
  $("who-roles").textContent = session.roles.length ? session.roles.join(", ") : "none";
  view("session-view");
  await new AskView(session, screen).open().catch((failure) => {
    $("ask-error").textContent = failure.message;
  });
}

function signOut() {
  useToken(null);
  session = null;
  shown.clear();
  window.location.reload();
}

async function start() {
  const settings = await json("/console/settings.json");
  paint(settings.banner);
  if (settings.notice) await acceptNotice(settings.notice);
  view("sign-in-view");
  $("token").focus();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) {
      $("sign-in-error").textContent = "Paste a bearer token first, or continue with your certificate.";
      return;
    }
    signIn(token);
  });
  $("sign-in-certificate").addEventListener("click", () => signIn(null));
  $("sign-out").addEventListener("click", signOut);
}

start().catch((error) => {
  view("loading-view");
  document.querySelector("#loading-view .status").textContent = `The console could not start: ${error.message}`;
});
