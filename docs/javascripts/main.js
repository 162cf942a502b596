// Page start-up: mount every widget (the math was typeset by the build).
//
// Material's instant navigation swaps page content without reloading, and
// emits the new document on document$; everything is (re)done there.
import { showWidgetError } from "./lib/site.js";

// One module per widget kind, loaded only on pages that use it.
const WIDGETS = {
  "sine-fit": () => import("./widgets/sine-fit.js"),
  "accumulated-loss": () => import("./widgets/accumulated-loss.js"),
  "will-it-work": () => import("./widgets/will-it-work.js"),
  "reptile-interpolation": () => import("./widgets/reptile-interpolation.js"),
  "curvature": () => import("./widgets/curvature.js"),
  "proximal-loss": () => import("./widgets/proximal-loss.js"),
  "implicit-gradient": () => import("./widgets/implicit-gradient.js"),
  "meta-gradients": () => import("./widgets/meta-gradients.js"),
  "few-shot-quiz": () => import("./widgets/few-shot-quiz.js"),
  "few-shot-map": () => import("./widgets/few-shot-map.js"),
  "omniglot-accuracy": () => import("./widgets/omniglot-accuracy.js"),
};

function mountWidgets(root) {
  for (const element of root.querySelectorAll("[data-widget]")) {
    if (element.dataset.widgetMounted !== undefined) continue;
    element.dataset.widgetMounted = "";
    const kind = element.dataset.widget;
    const load = WIDGETS[kind];
    if (!load) {
      showWidgetError(element, new Error(`this site has no widget called "${kind}"`));
      continue;
    }
    // The build's static figure stays visible, under a loading notice, until
    // the widget has started; if it cannot start, the notice says why.
    const fallback = [...element.children];
    const status = document.createElement("p");
    status.className = "widget-status";
    status.setAttribute("role", "status");
    status.textContent = "Loading the interactive model…";
    element.prepend(status);
    load()
      .then((module) => module.mount(element))
      .then(() => {
        status.remove();
        for (const child of fallback) child.hidden = true;
      })
      .catch((error) => showWidgetError(element, error));
  }
}

function start() {
  mountWidgets(document.body);
}

if (window.document$) {
  window.document$.subscribe(start);
} else if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}
