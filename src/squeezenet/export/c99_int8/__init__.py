"""An int8 C99 engine for the SqueezeNet family, bit-identical to `squeezenet.int8.reference.Int8Model`.

Same layout as `squeezenet.export.c99` (one emitter per operator, each with its C kernel in
``templates/``), on int8 tensors: ``convolution`` decodes the entropy-coded weights one filter at a
time (``weights`` gives their flash form, ``stream`` and ``rans`` the coded symbol streams), ``max_pool``, ``global_average_pool`` (int32 sums) and ``fire``
(squeeze, expands, TFLite ADD bypass). ``memory`` plans every static buffer; ``model`` assembles
``model.c``/``model.h``; ``export`` calibrates, quantizes and writes them.
"""

from squeezenet.export.c99_int8.export import INT8_C_FILES, export_c_int8
from squeezenet.export.c99_int8.model import Int8CSource, emit_int8_model
from squeezenet.export.c99_int8.memory import MemoryPlan, memory_plan

__all__ = ["INT8_C_FILES", "Int8CSource", "MemoryPlan", "emit_int8_model", "export_c_int8", "memory_plan"]
