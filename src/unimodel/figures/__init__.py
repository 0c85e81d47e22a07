"""The site's figures and numbers: one module per chapter, every item registered by name."""
