// A region that scrolls sideways must be reachable with the keyboard (WCAG 2.1.1; axe-core:
// scrollable-region-focusable). Material makes its own code blocks focusable; the notebooks'
// cells and outputs, and wide tables, are made so here, each only when it does overflow.
document$.subscribe(() => {
  const scrollable = ".highlight-ipynb, .jp-OutputArea-output, .md-typeset__scrollwrap";
  for (const region of document.querySelectorAll(scrollable)) {
    if (region.scrollWidth > region.clientWidth && !region.hasAttribute("tabindex")) {
      region.tabIndex = 0;
    }
  }
});
