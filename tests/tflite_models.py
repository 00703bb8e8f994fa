"""Small full-integer int8 .tflite models built from Keras layers, for tests.

    from tflite_models import convert, tf_fixture  # noqa: F401 (registers the fixture `tf`)

    def test_x(tf, tmp_path):
        path = tmp_path / "conv.tflite"
        path.write_bytes(convert(tf, tf.keras.layers.Conv2D(4, 3), (6, 6, 2)))

TFLiteConverter with a representative data set, int8 input and output by default, so every
tensor is int8; io="float32" keeps a float32 input and output (QUANTIZE first, DEQUANTIZE last).
A list of input shapes makes a multi-input model (the layer gets the list of inputs).
Edit a converted model with model_prep.tflite_graph.edit_model.
"""
import os

import numpy as np
import pytest


@pytest.fixture(scope="session", name="tf")
def tf_fixture():
    """TensorFlow, imported once per session (quietly)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow
    return tensorflow


def convert(tf, layer, in_shape, batch=1, per_channel=True, io="int8"):
    """`layer` (a Keras layer, or any function of the input tensor) as a full-integer .tflite (bytes).

    in_shape: one input's shape without the batch, or a list of them (the layer then gets a list);
    io: "int8" or "float32", the model's input and output type.
    """
    tf.keras.utils.set_random_seed(0)
    shapes = in_shape if isinstance(in_shape, list) else [in_shape]
    inputs = [tf.keras.Input(s, batch_size=batch) for s in shapes]
    out = layer(inputs if isinstance(in_shape, list) else inputs[0])
    conv = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inputs, out))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: (
        [rng.normal(0.3, 1.5, (batch, *s)).astype(np.float32) for s in shapes] for _ in range(16))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = {"int8": tf.int8, "float32": tf.float32}[io]
    if not per_channel:
        conv._experimental_disable_per_channel = True
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    return conv.convert()
