"""FullTrain: the float upper-memory reference. Every layer of the float model, fine-tuned in PyTorch.

    from search import full_train, tasks
    task = tasks.prepare("digits", "mobilenetv2-w0.35", quick=True)
    data = tasks.device_data(task, n_train=100, n_test=400)
    full_train.full_train_float(task, data, epochs=10, lr=0.003, batch_size=8)  # (val, test) accuracy
    full_train.full_train_macs(task)                                           # MACs per sample and step

SGD with momentum 0.9 on the cross-entropy over every parameter. The model stays in eval mode:
BatchNorm normalises with its running statistics (statistics of a batch of a few samples are
noise) while its affine parameters train; dropout is off.
"""
import numpy as np
import torch
import torch.nn.functional as F

from model_prep import checkpoint
from model_prep.models.blocks import count_macs
from model_prep.pretrain import evaluate
from model_prep.tflite_graph import load_graph


def fine_tune(model, x, y, epochs, lr, batch_size, seed=0, momentum=0.9):
    """Train every parameter of `model` on (x float NCHW, y) in place; returns the model."""
    model.eval()
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    x, y = torch.as_tensor(np.asarray(x, np.float32)), torch.as_tensor(np.asarray(y), dtype=torch.long)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=order)
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def accuracy(model, x, y, batch_size=256):
    """Top-1 accuracy of the float model on (x float NCHW, y): model_prep.pretrain.evaluate."""
    return evaluate(model, torch.as_tensor(np.asarray(x, np.float32)), torch.as_tensor(np.asarray(y)), batch_size)


def full_train_float(task, data, epochs=10, lr=0.003, batch_size=8, seed=0):
    """(validation, test) accuracy of the task's float checkpoint fine-tuned on data.x_train (all layers)."""
    torch.manual_seed(seed)
    model, _ = checkpoint.load(task.checkpoint)
    fine_tune(model, data.x_train, data.y_train, epochs, lr, batch_size, seed)
    return accuracy(model, data.x_val, data.y_val), accuracy(model, data.x_test, data.y_test)


def input_shape(task):
    """One sample's float input shape (C, H, W), from the int8 export's input (1, H, W, C)."""
    graph = load_graph(task.tflite)
    _, h, w, c = graph.tensors[graph.inputs[0]].shape
    return (c, h, w)


def full_train_macs(task):
    """MACs of one fp32 training step per sample: 3 x forward (forward, input gradients, weight gradients)."""
    model, _ = checkpoint.load(task.checkpoint)
    return 3 * count_macs(model, torch.zeros(1, *input_shape(task)))
