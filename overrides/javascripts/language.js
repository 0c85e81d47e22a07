// The header's language switch goes to the same page in the other language.
//
// Each language is its own MkDocs build: the Chinese site at the root, the
// English one under en/, with the same page paths. Material's switch links
// (extra.alternate) go to each site's home; here they are pointed at this
// page's twin: this page's path relative to its own site's home, appended to
// the other site's home. Both homes come from the <link rel="alternate"
// hreflang> tags in <head>, which instant navigation keeps up to date (the
// header's links it does not). A 404 page (no canonical link: it has no twin)
// keeps the links to the homes. target="_self" keeps Material's own handler
// of alternate links, which guesses the twin from a sitemap, out of the way.
document$.subscribe(() => {
  if (!document.querySelector('link[rel="canonical"]')) return;
  const homes = {};
  for (const link of document.querySelectorAll('head link[rel="alternate"][hreflang]')) {
    homes[link.getAttribute("hreflang")] = new URL(link.getAttribute("href"), location.href).href;
  }
  const mine = homes[document.documentElement.lang];
  if (!mine || !location.href.startsWith(mine)) return;
  const path = location.pathname.slice(new URL(mine).pathname.length);
  for (const item of document.querySelectorAll(".md-select__link[hreflang]")) {
    const home = homes[item.getAttribute("hreflang")];
    if (home) {
      item.href = new URL(path, home).href;
      item.target = "_self";
    }
  }
});
