// The d3 modules the contour widgets use, loaded from the site's own vendor
// folder (site_builder/assets.py copies them there; never from a CDN).
//
//   import { loadD3 } from "./d3.js";
//   const d3 = await loadD3();          // d3.contours(), d3.quantile(), …
//
// The packages' ES builds import the bare specifier "d3-array", which a
// browser cannot resolve without an import map, so their UMD bundles are
// injected as classic scripts, in dependency order, once per page load; each
// adds its functions to window.d3. Pages without a contour widget never load
// them.
import { siteUrl, WidgetError } from "./site.js";

const SCRIPTS = [
  "assets/vendor/d3-array/d3-array.min.js",
  "assets/vendor/d3-contour/d3-contour.min.js",
];

let d3Promise = null;

function injectScript(url) {
  return new Promise((resolve, reject) => {
    const existing = document.querySelector(`script[data-vendor="${url}"]`);
    if (existing?.dataset.loaded === "true") {
      resolve();
      return;
    }
    const script = existing ?? document.createElement("script");
    script.addEventListener("load", () => { script.dataset.loaded = "true"; resolve(); }, { once: true });
    script.addEventListener("error", () => {
      script.remove();
      reject(new WidgetError(`the drawing library ${new URL(url).pathname} could not be loaded.`));
    }, { once: true });
    if (!existing) {
      script.src = url;
      script.async = false;
      script.dataset.vendor = url;
      document.head.append(script);
    }
  });
}

/** window.d3 with d3-array and d3-contour, loaded once. */
export function loadD3() {
  if (!d3Promise) {
    d3Promise = (async () => {
      if (typeof window.d3?.contours !== "function") {
        for (const path of SCRIPTS) await injectScript(siteUrl(path).href);
      }
      if (typeof window.d3?.contours !== "function") {
        throw new WidgetError("the contour library loaded but did not define d3.contours.");
      }
      return window.d3;
    })();
    d3Promise.catch(() => { d3Promise = null; });
  }
  return d3Promise;
}
