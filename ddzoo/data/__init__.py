"""Real image-classification datasets: MNIST, Fashion-MNIST and CIFAR-10.

:mod:`~ddzoo.data.catalog` what each dataset is, :mod:`~ddzoo.data.sources` where its files come from (checked),
:mod:`~ddzoo.data.split` a loaded split, :mod:`~ddzoo.data.transforms` training augmentation.

Example:
    >>> split = load_split("mnist", "test")
    >>> x, y = split.tensors(limit=100)   # float32 (100, 1, 28, 28) in [0, 1], int64 (100,)
"""

from ddzoo.data.catalog import DATASETS, SPLITS, DatasetInfo, get_dataset_info, list_datasets
from ddzoo.data.split import Split, check_dataset, load_split

__all__ = ["DATASETS", "SPLITS", "DatasetInfo", "Split", "check_dataset", "get_dataset_info", "list_datasets",
           "load_split"]
