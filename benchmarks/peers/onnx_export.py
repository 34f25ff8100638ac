"""Float twin -> ONNX for the ONNX Runtime peer (engine "ort-float").

Route: Keras float twin -> float TFLite flatbuffer (``models.to_tflite_float``) -> ONNX with
tf2onnx's TFLite front end. The TFLite route is used because tf2onnx's Keras front end does not
support TF 2.16 + tf-keras; the TFLite graph already has BN folded into the convolutions.
Input and 4-D output are declared NCHW (ONNX Runtime's native layout), so no layout transposes
sit at the graph boundary. Needs ``tf2onnx`` and ``onnx`` (optional part of setup_peers.sh).
"""

from __future__ import annotations

import os
import tempfile

import tensorflow as tf


def keras_to_onnx(model, opset: int = 17) -> bytes:
    import tf2onnx.convert

    import models

    flat = models.to_tflite_float(model)
    interp = tf.lite.Interpreter(model_content=flat)
    (inp,) = interp.get_input_details()
    outs = interp.get_output_details()
    nchw_out = [o["name"] for o in outs if len(o["shape"]) == 4]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.tflite")
        with open(path, "wb") as f:
            f.write(flat)
        proto, _ = tf2onnx.convert.from_tflite(
            path,
            opset=opset,
            inputs_as_nchw=[inp["name"]] if len(inp["shape"]) == 4 else None,
            outputs_as_nchw=nchw_out or None,
        )
    return proto.SerializeToString()
