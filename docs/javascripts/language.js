// Keep the header's language switcher pointing at this page in the other
// language. The i18n plugin writes the per-page links into both the header
// and <link rel="alternate" hreflang="..."> in <head>; instant navigation
// replaces <head> links but not the header, so copy them over each time.
document$.subscribe(() => {
  for (const link of document.querySelectorAll('head link[rel="alternate"][hreflang]')) {
    const lang = link.getAttribute("hreflang");
    for (const item of document.querySelectorAll(`.md-select__link[hreflang="${lang}"]`)) {
      item.href = link.href;
    }
  }
});
