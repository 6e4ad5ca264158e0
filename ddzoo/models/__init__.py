"""Architectures and their registry. Every model takes float32 NCHW pixels in [0, 1]."""

from ddzoo.models import paper, resnet  # noqa: F401  (registers the architectures)
from ddzoo.models.registry import (
    Classifier,
    ModelSpec,
    Normalize,
    count_parameters,
    create_model,
    get_model_spec,
    list_architectures,
    memory_format_for,
    register_model,
)

__all__ = ["Classifier", "ModelSpec", "Normalize", "count_parameters", "create_model", "get_model_spec",
           "list_architectures", "memory_format_for", "register_model"]
