// Fetching a JSON file that the build wrote into the site.
import { siteUrl, WidgetError } from "./site.js";

/**
 * The parsed JSON at a path of the built site (e.g. "assets/glyphs/index.json").
 * `what` names the file for the reader in the error a widget shows instead.
 * A `format` other than `format` (when given) is refused.
 */
export async function loadJson(path, what, { format = null } = {}) {
  const url = siteUrl(path);
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new WidgetError(`${what} (${url.pathname}) could not be fetched (${err.message}).`);
  }
  if (!response.ok) throw new WidgetError(`${what} (${url.pathname}) is missing (HTTP ${response.status}).`);
  let data;
  try {
    data = await response.json();
  } catch (err) {
    throw new WidgetError(`${what} (${url.pathname}) is not valid JSON (${err.message}).`);
  }
  if (format !== null && data?.format !== format) {
    throw new WidgetError(`${what} has format ${data?.format}; this page reads format ${format}.`);
  }
  return data;
}
