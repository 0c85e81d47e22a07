"""The networks, one module per model family: its config, its layers, its loss and how it draws or writes.

How each one is trained and scored on the digits is its recipe (``unimodel.recipes``); the layers
that several families share are in ``layers``.
"""
