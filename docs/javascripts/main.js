// Page start-up: mount each widget when the reader comes near it (the math was
// typeset by the build).
//
// A widget's module, and with it onnxruntime-web and the widget's model, is
// loaded only when the widget is about to be seen, once per page visit; a page
// without widgets loads none of it, and one whose widgets are all further down
// loads nothing for them until the reader scrolls. Until then, the build's
// static figure stands in the widget's place (widgets.css reserves the height
// the interactive version will take, so nothing jumps when it replaces it).
//
// Material's instant navigation swaps page content without reloading, and
// emits the new document on document$; everything is (re)done there.
import { showWidgetError, siteUrl } from "./lib/site.js";

// One module per widget kind, loaded only on pages that use it, and only when
// one of its widgets comes near the viewport. `model`: whether the widget runs
// an ONNX graph (its loading notice says so).
const WIDGETS = {
  "sine-fit": { model: true, load: () => import("./widgets/sine-fit.js") },
  "all-models": { model: true, load: () => import("./widgets/all-models.js") },
  "watch-it-learn": { model: true, load: () => import("./widgets/watch-it-learn.js") },
  "accumulated-loss": { model: true, load: () => import("./widgets/accumulated-loss.js") },
  "will-it-work": { model: true, load: () => import("./widgets/will-it-work.js") },
  "reptile-interpolation": { model: true, load: () => import("./widgets/reptile-interpolation.js") },
  "curvature": { model: true, load: () => import("./widgets/curvature.js") },
  "proximal-loss": { model: true, load: () => import("./widgets/proximal-loss.js") },
  "implicit-gradient": { model: true, load: () => import("./widgets/implicit-gradient.js") },
  "meta-gradients": { model: true, load: () => import("./widgets/meta-gradients.js") },
  "few-shot-quiz": { model: true, warm: false, load: () => import("./widgets/few-shot-quiz.js") },
  "few-shot-map": { model: false, load: () => import("./widgets/few-shot-map.js") },
  "omniglot-accuracy": { model: false, load: () => import("./widgets/omniglot-accuracy.js") },
};

// How near is near. While the page loads and the reader has not moved, only
// the widgets on screen start: the first paint and the page's first seconds
// belong to the text. Once the reader scrolls (or touches, clicks, presses a
// key), every widget within one and a half screens above or below starts, so
// it is ready by the time the reader reaches it.
const ON_SCREEN = "0px";
const AHEAD = "150% 0px";
const READER_MOVES = ["scroll", "wheel", "keydown", "pointerdown", "touchstart"];

// The ONNX runtime: its WebAssembly binary (14 MB) and its module, the files
// lib/ort-runner.js loads. Fetched as soon as the first widget with a model
// starts, alongside the widget's own modules and model, rather than after them.
const ORT_WASM = siteUrl("assets/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm");
const ORT_MODULE = siteUrl("assets/vendor/onnxruntime-web/ort.wasm.bundle.min.mjs");
let runtimeWarmed = false;

function preload(href, attributes) {
  const link = document.createElement("link");
  Object.assign(link, attributes);
  link.href = href;
  document.head.append(link);
}

function warmRuntime(element) {
  if (!runtimeWarmed) {
    runtimeWarmed = true;
    // onnxruntime-web fetches the binary with credentials "same-origin", which
    // is what a crossorigin="anonymous" preload matches: one download, not two.
    preload(ORT_WASM.href, { rel: "preload", as: "fetch", crossOrigin: "anonymous" });
    preload(ORT_MODULE.href, { rel: "modulepreload" });
    // lib/ort-runner.js's own import, fetched with it rather than after it.
    preload(siteUrl("javascripts/lib/manifest.js").href, { rel: "modulepreload" });
  }
  // The runtime starts now (compiling its WebAssembly and opening its first
  // session are most of a widget's start-up), while the widget's own modules,
  // the model list and the graph are fetched. A widget that names its graph
  // (data-model, the sine-fit widgets) also gets its inference session now.
  // lib/ort-runner.js keeps one runtime and one session per graph, so the
  // widget's own loadOrt()/loadSession() receives these; a failure here is
  // the widget's to report when it asks again.
  const runner = import("./lib/ort-runner.js");
  const started = [runner.then((ort) => ort.loadOrt())];
  const name = element.dataset.model;
  if (name) {
    started.push(Promise.all([import("./lib/manifest.js"), runner])
      .then(([manifest, ort]) => manifest.findModel(name).then((entry) => ort.loadSession(manifest.modelUrl(entry)))));
  }
  for (const promise of started) promise.catch(() => {});
}

// A widget with `warm: false` runs the runtime only once the reader plays
// (the quiz's conv nets join at the first answer): mounting it loads none.
const warmsAtMount = (widget) => Boolean(widget?.model) && widget.warm !== false;

function loadingText(kind) {
  return warmsAtMount(WIDGETS[kind]) ? "Loading the interactive model…" : "Loading the interactive figure…";
}

function mount(element) {
  if (element.dataset.widgetMounted !== undefined) return;
  element.dataset.widgetMounted = "";
  const kind = element.dataset.widget;
  const widget = WIDGETS[kind];
  if (!widget) {
    showWidgetError(element, new Error(`this site has no widget called "${kind}"`));
    return;
  }
  if (warmsAtMount(widget)) warmRuntime(element);
  // The build's static figure stays visible, under a loading notice, until
  // the widget draws its own content in its place (before the next paint, so
  // the two are never shown together and the box does not grow in between);
  // if the widget cannot start, the figure comes back and the notice says why.
  const fallback = new Set(element.children);
  const status = document.createElement("p");
  status.className = "widget-status widget-status--loading";
  status.setAttribute("role", "status");
  status.textContent = loadingText(kind);
  element.prepend(status);
  const own = (child) => !fallback.has(child) && child !== status;
  const swap = new MutationObserver(() => {
    if (![...element.children].some(own)) return;
    swap.disconnect();
    for (const child of fallback) child.hidden = true;
  });
  swap.observe(element, { childList: true });
  widget.load()
    .then((module) => module.mount(element))
    .then(() => {
      swap.disconnect();
      status.remove();
      for (const child of fallback) child.hidden = true;
    })
    .catch((error) => {
      swap.disconnect();
      for (const child of element.children) {
        if (child !== status) child.hidden = own(child);
      }
      showWidgetError(element, error);
    });
}

let watchers = [];
let lookAhead = null;

function stopWatching() {
  for (const watcher of watchers) watcher.disconnect();
  watchers = [];
  if (lookAhead) {
    for (const type of READER_MOVES) window.removeEventListener(type, lookAhead);
    lookAhead = null;
  }
}

function watch(elements, rootMargin) {
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      for (const watcher of watchers) watcher.unobserve(entry.target);
      mount(entry.target);
    }
  }, { rootMargin });
  for (const element of elements) observer.observe(element);
  watchers.push(observer);
}

function onScreen(element) {
  const box = element.getBoundingClientRect();
  return box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0 &&
    box.top < window.innerHeight && box.left < window.innerWidth;
}

function start() {
  stopWatching();
  const waiting = [...document.querySelectorAll("[data-widget]")]
    .filter((element) => element.dataset.widgetMounted === undefined);
  if (!waiting.length) return;
  if (!("IntersectionObserver" in window)) {
    for (const element of waiting) mount(element);
    return;
  }
  // Widgets already on screen (a link to one, a reload further down) start
  // now, not at the observer's first report a rendered frame later; reading
  // their position takes the layout the first paint makes anyway.
  for (const element of waiting) {
    if (onScreen(element)) mount(element);
  }
  watch(waiting.filter((element) => element.dataset.widgetMounted === undefined), ON_SCREEN);
  // (The page's own scroll reaches window; a scrolling sidebar's does not.)
  lookAhead = () => {
    for (const type of READER_MOVES) window.removeEventListener(type, lookAhead);
    lookAhead = null;
    watch(waiting.filter((element) => element.dataset.widgetMounted === undefined), AHEAD);
  };
  for (const type of READER_MOVES) window.addEventListener(type, lookAhead, { passive: true });
}

if (window.document$) {
  window.document$.subscribe(start);
} else if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}
