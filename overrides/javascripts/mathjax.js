// MathJax 3 configuration. The site serves MathJax itself (tex-svg.js is
// copied from node_modules/ into the built site by src/unimodel/docs_hooks.py);
// nothing is loaded from a CDN.
//
// pymdownx.arithmatex (generic: true) wraps math in class="arithmatex" with
// \( ... \) for inline and \[ ... \] for display math. Notebook pages
// (mkdocs-jupyter) keep $ ... $ and $$ ... $$ inside .jp-RenderedMarkdown.
// Everything else on the page is left alone.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams",
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown",
  },
  startup: {
    typeset: false,  // the first page is typeset by the document$ subscription below
  },
};

// Material's instant navigation swaps the page content without reloading the
// page; document$ emits once on load and after every such navigation. The
// typesets are chained on MathJax.startup.promise so they never overlap.
document$.subscribe(() => {
  const startup = window.MathJax && window.MathJax.startup;
  if (!startup || !startup.promise) {
    return;  // tex-svg.js did not load: leave the TeX source readable
  }
  startup.promise = startup.promise
    .then(() => {
      MathJax.typesetClear();  // forget the math of the previous page
      MathJax.texReset();      // and its equation numbers and labels
      return MathJax.typesetPromise();
    })
    .catch((error) => console.error("MathJax typesetting failed:", error));
});
