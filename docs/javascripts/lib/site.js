// Where the site lives, and how a widget reports that it cannot run.
//
// This file sits at <site>/javascripts/lib/site.js, so the site root is two
// folders up from it, whatever page imported it and however deep that page is.
export const SITE_ROOT = new URL("../../", import.meta.url);

/** Absolute URL of a file of the built site, e.g. siteUrl("assets/models/manifest.json"). */
export function siteUrl(path) {
  return new URL(path, SITE_ROOT);
}

/** An error whose message is meant for the reader. */
export class WidgetError extends Error {}

/**
 * Say in place that a widget cannot run, and leave the build's static figure
 * (the widget element's original content) visible below the notice.
 */
export function showWidgetError(root, error) {
  root.dataset.state = "error";
  let notice = root.querySelector(":scope > .widget-status");
  if (!notice) {
    notice = document.createElement("p");
    notice.className = "widget-status";
    notice.setAttribute("role", "status");
    root.prepend(notice);
  }
  const reason = error instanceof WidgetError ? error.message : `it failed to load (${error?.message ?? error})`;
  notice.classList.add("widget-status--error");
  notice.textContent = `The interactive version of this figure cannot run here: ${reason} ` +
    "The picture below is the static version rendered when the site was built.";
  // A warning, not an error: the page still works, and shows the static figure.
  console.warn(`widget ${root.dataset.widget}:`, error);
}
