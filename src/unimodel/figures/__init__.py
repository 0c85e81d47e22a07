"""How a chapter's figures and numbers are made: the registry that names, keys and caches them, the drawing style, the diagrams."""
