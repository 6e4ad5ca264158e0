"""ddzoo: a deployment-oriented zoo of adversarially robust (Deep Defense) image classifiers.

    >>> import ddzoo
    >>> model = ddzoo.load("lenet-mnist-dd")                  # pulls if needed; nn.Module on [0, 1] pixels
    >>> runner = ddzoo.load("lenet-mnist-dd", format="onnx")  # or fp16 / int8 / trt: a Runner
    >>> [m.name for m in ddzoo.list_models()]                 # published models available here
    >>> ddzoo.verify("lenet-mnist-dd", limit=200)             # DeepFool against each artifact, gate applied

Importing the package loads nothing heavy; the API (:mod:`ddzoo.api`) is imported on first use, and
onnxruntime and tensorrt only by the stages that need them.
"""

__version__ = "0.1.0"

_API = ("load", "list_models", "verify", "PublishedModel", "VerificationResult")


def __getattr__(name: str):
    if name in _API:
        from ddzoo import api

        return getattr(api, name)
    raise AttributeError(f"module 'ddzoo' has no attribute {name!r}")


__all__ = ["__version__", *_API]
