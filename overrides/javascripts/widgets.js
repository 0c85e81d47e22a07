// The page's widgets: the chapters' trained models, run in the reader's browser by ONNX Runtime Web.
//
// A widget is <div class="unimodel-widget" data-widget="KIND" data-model="PAGE/NAME"></div> in a
// page (data-model may list several models, separated by spaces). When it first comes into view,
// this file imports its code, widgets/KIND.js (whose `mount(element, tools)` builds it), and what
// widgets share, widgets/shared.js; ONNX Runtime Web (javascripts/onnxruntime/, served by the site)
// and the model (models/PAGE/NAME.onnx, exported and checked at build time) are fetched when the
// reader first uses it. A page's first load fetches this file only, on every page.

const FAILED = {
  zh: "这个小部件没能加载：{error}。上面的图是同一个模型在构建时画的。",
  en: "This widget could not load: {error}. The figures above show the same model, drawn at build time.",
};

async function mount(widget) {
  try {
    const [kind, shared] = await Promise.all([import(new URL(`widgets/${widget.dataset.widget}.js`, import.meta.url).href), import(new URL("widgets/shared.js", import.meta.url).href)]);
    await shared.start(widget, kind.mount);
  } catch (error) {
    const language = document.documentElement.lang.startsWith("zh") ? "zh" : "en";
    widget.textContent = FAILED[language].replace("{error}", error.message || error);
  }
}

const watcher = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) {
        watcher.unobserve(entry.target);
        mount(entry.target);
      }
    }
  },
  { rootMargin: "200px" },
);

// Material's instant navigation swaps the page's content: look for widgets after every swap
document$.subscribe(() => {
  for (const widget of document.querySelectorAll(".unimodel-widget:not([data-watched])")) {
    widget.dataset.watched = "";
    watcher.observe(widget);
  }
});
