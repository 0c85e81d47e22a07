"""One module per page of the site, named after the page's file: ``unified_model.py`` computes the
figures and numbers of ``docs/unified-model.md`` (and of its English twin). Every figure and result
a module registers is named after its page (``unified-model/...``, ``unified-model-...``); the
registry (``unimodel.figures.registry``) finds the modules here by their files."""
