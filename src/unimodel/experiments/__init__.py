"""What a chapter measures beyond training one model: the 2-D mode-collapse benchmark (``gan2d``), the
taxonomy's table (``taxonomy``), CapFilt (``capfilt``), the WiScore (``wise``) and flow matching on the
2-D mixtures (``flow``). Each builds on the library (``unimodel.data``, ``unimodel.runs``, ...) and the
models; the chapters (``unimodel.chapters``) draw what they compute."""
