// Search costs nothing until the reader searches.
//
// Material for MkDocs starts its search as every page loads: it creates the
// search worker (assets/javascripts/workers/search.*.min.js, 40 KB) and
// fetches the whole site's index (search/search_index.json, about 60 KB as
// gzip sends it: most of what a page of text transfers), so that results are
// ready the moment the reader types. Here both wait until the reader opens
// search (a click on the search box, focus on it, or Material's "/" and "s"
// shortcuts, which open it the same way); until then the request for the index
// is held and the worker not yet started. Typing then shows Material's
// "Initializing search" for the moment the index takes to arrive. A page
// opened from a search result (?h=…, whose matches Material highlights)
// fetches the index at once, as before.
//
// A classic script that runs before Material's bundle (overrides/main.html),
// so that it sees the bundle's first request. It touches only those two: every
// other request and worker goes through untouched.
(() => {
  const INDEX = /\/search\/search_index\.json$/;
  const WORKER = /\/assets\/javascripts\/workers\/search\.[^/]*\.js$/;
  const pathOf = (url) => {
    try {
      return new URL(String(url), document.baseURI).pathname;
    } catch {
      return "";
    }
  };

  let open = new URLSearchParams(location.search).has("h");
  const held = [];
  const release = () => {
    if (open) return;
    open = true;
    document.documentElement.dataset.searchLoaded = "";
    for (const go of held.splice(0)) go();
  };
  if (open) document.documentElement.dataset.searchLoaded = "";

  // The index: Material requests it with XMLHttpRequest; its send() waits.
  const indexRequests = new WeakSet();
  const xhrOpen = XMLHttpRequest.prototype.open;
  const xhrSend = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    if (String(method).toUpperCase() === "GET" && INDEX.test(pathOf(url))) indexRequests.add(this);
    else indexRequests.delete(this);
    return xhrOpen.call(this, method, url, ...rest);
  };
  XMLHttpRequest.prototype.send = function (...args) {
    if (!open && indexRequests.has(this)) {
      held.push(() => xhrSend.apply(this, args));
      return undefined;
    }
    return xhrSend.apply(this, args);
  };

  // The worker: started by the first message Material sends it (the index,
  // which now comes only once search is open); its replies pass through.
  const NativeWorker = window.Worker;
  if (typeof NativeWorker === "function") {
    class SearchWorker extends EventTarget {
      #args;
      #worker = null;
      constructor(args) {
        super();
        this.#args = args;
      }
      postMessage(...message) {
        if (!this.#worker) {
          this.#worker = new NativeWorker(...this.#args);
          for (const type of ["message", "messageerror", "error"]) {
            this.#worker.addEventListener(type, (event) => {
              const copy = type === "error" ? new Event("error") : new MessageEvent(type, { data: event.data });
              this.dispatchEvent(copy);
            });
          }
        }
        this.#worker.postMessage(...message);
      }
      terminate() {
        this.#worker?.terminate();
      }
    }
    window.Worker = new Proxy(NativeWorker, {
      construct(target, args, newTarget) {
        if (WORKER.test(pathOf(args[0]))) return new SearchWorker(args);
        return Reflect.construct(target, args, newTarget);
      },
    });
  }

  // What opens search: the search toggle (a click on the box, the shortcuts)
  // and focus on the query field (the keyboard, a script).
  document.addEventListener("change", (event) => {
    if (event.target?.id === "__search" && event.target.checked) release();
  }, true);
  document.addEventListener("focusin", (event) => {
    if (event.target?.matches?.("[data-md-component='search-query']")) release();
  }, true);
})();
