"""What only the site needs: the MkDocs hooks (``docs_hooks``), the build's task graph (``build``), the
claims a page makes about its numbers (``claims``), the executed notebooks (``notebooks``), the
published cache (``publish``) and the build's benchmark (``bench``)."""
