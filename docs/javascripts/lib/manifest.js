// The build's description of its exported models (assets/models/manifest.json).
import { siteUrl, WidgetError } from "./site.js";

const MANIFEST_URL = siteUrl("assets/models/manifest.json");
const SUPPORTED_FORMAT = 1;
let manifestPromise = null;

/** The parsed manifest, fetched once per page load and shared by all widgets. */
export function loadManifest() {
  if (!manifestPromise) {
    manifestPromise = (async () => {
      let response;
      try {
        response = await fetch(MANIFEST_URL);
      } catch (err) {
        throw new WidgetError(`the model list ${MANIFEST_URL.pathname} could not be fetched (${err.message}).`);
      }
      if (!response.ok) {
        throw new WidgetError(`the model list ${MANIFEST_URL.pathname} is missing (HTTP ${response.status}).`);
      }
      const manifest = await response.json();
      if (manifest.format !== SUPPORTED_FORMAT || !Array.isArray(manifest.models)) {
        throw new WidgetError(`the model list has format ${manifest.format}, this page reads format ${SUPPORTED_FORMAT}.`);
      }
      return manifest;
    })();
    // Let a later page try again instead of remembering a network hiccup.
    manifestPromise.catch(() => { manifestPromise = null; });
  }
  return manifestPromise;
}

/** The manifest entry of one model, by name (e.g. "maml-sinusoid"). */
export async function findModel(name) {
  const manifest = await loadManifest();
  const entry = manifest.models.find((m) => m.name === name);
  if (!entry) {
    const known = manifest.models.map((m) => m.name).join(", ") || "none";
    throw new WidgetError(`the site has no model named "${name}" (it has: ${known}).`);
  }
  return entry;
}

/** URL of a model's ONNX graph. */
export function modelUrl(entry) {
  return siteUrl(`assets/models/${entry.file}`);
}
