// Material for MkDocs 9.8.2's inline version-warning snippet (partials/javascripts/outdated.html),
// served as a file for the Content-Security-Policy; the base URL comes from the script tag.
var el=document.querySelector("[data-md-component=outdated]"),base=new URL(document.currentScript.dataset.base,location),outdated=__md_get("__outdated",sessionStorage,base);!0===outdated&&el&&(el.hidden=!1)
