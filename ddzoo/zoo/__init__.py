"""The zoo: publish model packages to hubs and pull them into the local cache.

One job per module (huggingface_hub's layout): :mod:`~ddzoo.zoo.cache` the cache of pulled snapshots,
:mod:`~ddzoo.zoo.pull` fetching from hubs (and :func:`resolve_package`, a name or a folder), :mod:`~ddzoo.zoo.publish`
uploading, :mod:`~ddzoo.zoo.listing` what is here (``zoo list`` / ``zoo info``), :mod:`~ddzoo.zoo.verify` verifying
a package or an ONNX file by name or path, :mod:`~ddzoo.zoo.hubs` the hubs, :mod:`~ddzoo.zoo.card` the model card.
"""

from ddzoo.errors import ModelNotFoundError
from ddzoo.names import validate_name
from ddzoo.zoo.cache import is_read_only, models_dir
from ddzoo.zoo.listing import LIST_SORTS, LocalPackage, info, integrity, list_models, local_packages, package_facts
from ddzoo.zoo.publish import publish
from ddzoo.zoo.pull import configured_hubs, pull, resolve_package

__all__ = ["LIST_SORTS", "LocalPackage", "ModelNotFoundError", "configured_hubs", "info", "integrity", "is_read_only",
           "list_models", "local_packages", "models_dir", "publish", "pull", "resolve_package", "package_facts",
           "validate_name"]
