// Material for MkDocs 9.8.2's inline start-up snippet (partials/javascripts/base.html),
// served as a file so that the Content-Security-Policy needs no inline script.
// The scope (the site root, relative to the page) comes from the script tag.
__md_scope = new URL(document.currentScript.dataset.mdScope, location),
__md_hash = e => [...e].reduce(((e, _) => (e << 5) - e + _.charCodeAt(0)), 0),
__md_get = (e, _ = localStorage, t = __md_scope) => JSON.parse(_.getItem(t.pathname + "." + e)),
__md_set = (e, _, t = localStorage, a = __md_scope) => { try { t.setItem(a.pathname + "." + e, JSON.stringify(_)) } catch (e) {} };
