"""What each dataset is and where its real files come from.

Checksums of the original files are sha256 digests of their *decompressed content* (an idx file after
gunzip; each ``.bin`` member of the CIFAR-10 binary archive), so re-compressed mirrors such as Debian's
``dataset-fashion-mnist`` verify too. They were computed from the lossless copies in ``shared/data``
(and agree with Debian's Fashion-MNIST files byte for byte).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ddzoo.errors import UnknownNameError


@dataclass(frozen=True)
class RemoteFile:
    """One original file: its name in the cache, mirrors to try in order, and blob checksums."""

    filename: str
    urls: tuple[str, ...]
    blob_sha256: dict[str, str] = field(hash=False)


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's shape, classes, per-channel statistics (of the training set, [0,1] pixels) and files."""

    name: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    sizes: dict[str, int] = field(hash=False)
    npz_files: dict[str, str] = field(hash=False)  # ZOO_DATA_DIR file name -> sha256 of the file
    originals: tuple[RemoteFile, ...] = ()
    original_format: str = "idx"  # "idx" (gzipped idx files) or "cifar-bin" (CIFAR-10 binary archive)
    debian_dir: str | None = None  # folder under /usr/share/datasets holding the idx.gz originals

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _idx_files(base_urls: tuple[str, ...], sums: dict[str, str]) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(name, tuple(url + name for url in base_urls), {name: sha}) for name, sha in sums.items()
    )


MNIST = DatasetInfo(
    name="mnist",
    classes=tuple(str(i) for i in range(10)),
    image_shape=(1, 28, 28),
    mean=(0.1307,),
    std=(0.3081,),
    sizes={"train": 60_000, "test": 10_000},
    npz_files={"mnist.npz": "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"},
    originals=_idx_files(
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        {
            "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ),
)

FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    classes=("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
             "ankle boot"),
    image_shape=(1, 28, 28),
    mean=(0.2860,),
    std=(0.3530,),
    sizes={"train": 60_000, "test": 10_000},
    npz_files={"fashion_mnist.npz": "5b6d2c4c694a91887af8ab7d039c04f80af3c29378d731c93a538d2e831aa469"},
    originals=_idx_files(
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {
            "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    ),
    debian_dir="fashion-mnist",
)

CIFAR10 = DatasetInfo(
    name="cifar10",
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    image_shape=(3, 32, 32),
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    sizes={"train": 50_000, "test": 10_000},
    npz_files={
        "cifar10_train_part1.npz": "cd9f40d068f31a48213a1abee6731a540b07006e7e159430814785cec77cb1ef",
        "cifar10_train_part2.npz": "0b2b7777c136bd1b437a274e001a3b5ccbf6ce33e3b22a1d3ddd0492bd821879",
        "cifar10_train_part3.npz": "1f063cde85960d3c7275eb4cf563d31fff2af6a5e47bd69f10af0038e3b16951",
        "cifar10_train_part4.npz": "9c19b4446b9c089665f5911793ed3e0eb1dc8151cb7fdb045db1511ab3b0a814",
        "cifar10_train_part5.npz": "21a31cd5d611cca8873fb47c1bef3c3f9c4d3e41e4bc68cdf0ce2f94b0fcda4e",
        "cifar10_test.npz": "db416ae49abad84f07becad2bf4d66130b970f92f3efde766a31b4a32a0abe7a",
    },
    # The binary version: raw bytes, no pickle.
    originals=(
        RemoteFile(
            "cifar-10-binary.tar.gz",
            ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
            {
                "cifar-10-batches-bin/data_batch_1.bin": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
                "cifar-10-batches-bin/data_batch_2.bin": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
                "cifar-10-batches-bin/data_batch_3.bin": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
                "cifar-10-batches-bin/data_batch_4.bin": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
                "cifar-10-batches-bin/data_batch_5.bin": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
                "cifar-10-batches-bin/test_batch.bin": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
            },
        ),
    ),
    original_format="cifar-bin",
)

DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (MNIST, FASHION_MNIST, CIFAR10)}
SPLITS = ("train", "test")


def list_datasets() -> list[str]:
    """Names of the datasets ddzoo can load."""
    return sorted(DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``; raises :class:`UnknownNameError` listing valid names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownNameError("dataset", name, list_datasets()) from None
