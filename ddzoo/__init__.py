"""ddzoo: a deployment-oriented zoo of adversarially robust (Deep Defense) image classifiers.

Importing the package loads torch and numpy only; onnxruntime and tensorrt are imported lazily by the
stages that need them.
"""

__version__ = "0.1.0"
