"""pyengine.train: a readable NumPy trainer whose models export to ONNX.

    from pyengine import train as T
    T.seed(0)
    model = T.Sequential(T.Linear(64, 128), T.ReLU(), T.Linear(128, 10))
    opt = T.Adam(model.parameters(), lr=1e-3)
    hist = T.fit(model, T.SoftmaxCrossEntropy(), opt, X, y, X_val, y_val, epochs=20)
    T.to_onnx(model, "model.onnx", X[:1])
"""
from .base import Layer, Parameter, Sequential
from .export import ExportContext, to_onnx
from .layers import (GELU, AvgPool2D, BatchNorm, BatchNorm1d, BatchNorm2d, Conv2D, Dropout, Embedding,
                     Flatten, Identity, LayerNorm, LeakyReLU, Linear, MaxPool2D, ReLU, Residual, Sigmoid,
                     Softmax, Tanh, seed)
from .loop import History, OverfittingWarning, evaluate, fit, load_checkpoint, predict, save_checkpoint
from .losses import BCE, MSE, BCEWithLogits, Loss, SoftmaxCrossEntropy
from .optim import SGD, Adam, AdamW, CosineLR, LinearWarmup, Optimizer, StepLR, clip_grad_norm
from .recurrent import GRU, LSTM, RNN, Bidirectional, ImageRows
from .attention import (ClsToken, MultiHeadSelfAttention, PatchEmbed, PositionalEmbedding, TokenPool,
                        TransformerEncoderBlock)

__all__ = [
    "Layer", "Parameter", "Sequential", "ExportContext", "to_onnx",
    "Linear", "Conv2D", "MaxPool2D", "AvgPool2D", "BatchNorm", "BatchNorm1d", "BatchNorm2d", "LayerNorm",
    "Dropout", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "Flatten", "Embedding",
    "Residual", "Identity", "seed",
    "Loss", "SoftmaxCrossEntropy", "BCEWithLogits", "BCE", "MSE",
    "Optimizer", "SGD", "Adam", "AdamW", "StepLR", "CosineLR", "LinearWarmup", "clip_grad_norm",
    "fit", "evaluate", "predict", "History", "OverfittingWarning", "save_checkpoint", "load_checkpoint",
    "RNN", "LSTM", "GRU", "Bidirectional", "ImageRows", "MultiHeadSelfAttention", "TransformerEncoderBlock",
    "PositionalEmbedding", "PatchEmbed", "ClsToken", "TokenPool",
]
