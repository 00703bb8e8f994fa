"""Small full-integer int8 .tflite models built from Keras layers, for tests.

    from tflite_models import convert, tf_fixture  # noqa: F401 (registers the fixture `tf`)

    def test_x(tf, tmp_path):
        path = tmp_path / "conv.tflite"
        path.write_bytes(convert(tf, tf.keras.layers.Conv2D(4, 3), (6, 6, 2)))

TFLiteConverter with a representative data set, int8 input and output, so every tensor is int8.
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


def convert(tf, layer, in_shape, batch=1, per_channel=True):
    """`layer` (a Keras layer, or any function of the input tensor) as a full-integer int8 .tflite (bytes)."""
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input(in_shape, batch_size=batch)
    conv = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, layer(inp)))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: (
        [rng.normal(0.3, 1.5, (batch, *in_shape)).astype(np.float32)] for _ in range(16))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    if not per_channel:
        conv._experimental_disable_per_channel = True
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    return conv.convert()
