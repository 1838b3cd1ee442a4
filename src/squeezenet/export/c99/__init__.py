"""A self-contained C99 engine for the SqueezeNet family, generated per model.

One emitter per operator, each a small module with the C kernel it needs in ``templates/``:
``convolution`` (over the compressed weights), ``max_pool``, ``global_average_pool`` and ``fire``
(squeeze, expands, bypass). ``model`` assembles ``model.c``/``model.h``. To support a new operator,
add its operation to ``squeezenet.export.graph``, then a module here with ``KERNEL``,
``function_name(op)`` and ``emit_function(op)`` (``max_pool.py`` is the shortest to copy), and
register it in ``model._EMITTERS``.
"""

from squeezenet.export.c99.model import CSource, emit_model

__all__ = ["CSource", "emit_model"]
