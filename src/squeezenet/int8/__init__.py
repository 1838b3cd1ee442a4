"""int8 post-training quantization with exact integer arithmetic (the TFLite / CMSIS-NN scheme).

Chain: `calibrate` (fp32 statistics on photos) -> `quantize_model` (a range rule turns them into
scales; weights, biases and fixed-point multipliers follow) -> `correct_biases` (the int32 biases
matched to fp32 layer after layer on the same photos) -> `Int8Model` (the bit-exact integer
reference) and `export_onnx_qdq` (the same scales as a QDQ ONNX graph). `Int8Model.calibrated`
runs the chain with the defaults.
"""

from squeezenet.int8.calibration import Calibration, calibrate
from squeezenet.int8.correction import correct_biases
from squeezenet.int8.onnx_qdq import export_onnx_qdq
from squeezenet.int8.quantize import DEFAULT_RANGE_RULE, Quantization, quantize_model
from squeezenet.int8.ranges import RANGE_RULES
from squeezenet.int8.reference import BIAS_CORRECTIONS, DEFAULT_BIAS_CORRECTION, Int8Model

__all__ = ["BIAS_CORRECTIONS", "Calibration", "DEFAULT_BIAS_CORRECTION", "DEFAULT_RANGE_RULE", "Int8Model",
           "Quantization", "RANGE_RULES", "calibrate", "correct_biases", "export_onnx_qdq", "quantize_model"]
