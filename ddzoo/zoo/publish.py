"""``zoo publish``: write a verified package's card and manifest, then upload it to a hub."""

from __future__ import annotations

from pathlib import Path

from ddzoo import __version__, constants
from ddzoo.errors import CheckpointError, InvalidArgumentError
from ddzoo.fileio import atomic_write_bytes
from ddzoo.names import validate_name, validate_repo_id, validate_revision
from ddzoo.package import (
    CARD,
    MANIFEST,
    ONNX,
    WEIGHTS,
    read_config,
    read_verification,
    verification_status,
    write_manifest,
)
from ddzoo.records import parse_records
from ddzoo.zoo.hubs import hub_for


def _peers(folders: list[Path | str], dataset: str) -> list[tuple[str, dict, dict]]:
    """(name, config, verification) of each package folder to compare with; all must be of ``dataset``."""
    from ddzoo.zoo.card import checkpoint_facts

    peers = []
    for folder in map(Path, folders):
        config = read_config(folder)
        if config["dataset"] != dataset:
            raise InvalidArgumentError(f"cannot compare with {folder}: it is a {config['dataset']} model, not "
                                       f"{dataset}; pass --compare only packages of the same dataset")
        verification = read_verification(folder)
        try:
            checkpoint_facts(verification)
        except (CheckpointError, KeyError, TypeError, ValueError, IndexError) as err:
            raise InvalidArgumentError(f"cannot compare with {folder}: its checkpoint record is incomplete "
                                       f"({err!r}); run 'zoo verify {folder}' first") from None
        peers.append((validate_name(folder.resolve().name), config, verification))
    return peers


def publish(package: Path | str, repo: str, *, revision: str = "main", hub: str = "hf",
            allow_unverified: bool = False, skip_unverified: bool = False,
            compare: list[Path | str] = ()) -> dict:
    """Write the package's card and manifest, then upload it to ``hub`` as ``repo`` (``ORG/NAME``).

    Refuses artifacts without a passing verification record for their current bytes, unless
    ``allow_unverified`` (the card then names them) or ``skip_unverified`` (they are left out of the upload).
    The card compares the model with the verified packages in ``compare`` (folders, same dataset).
    """
    from ddzoo.verification import VerificationFailedError
    from ddzoo.zoo.card import make_card

    org, name = validate_repo_id(repo)
    validate_revision(revision)
    package = Path(package)
    config = read_config(package)
    status = {k: v for k, v in verification_status(package).items() if k != WEIGHTS}
    unverified = sorted(k for k, v in status.items() if v != "pass")
    if not status or (skip_unverified and len(unverified) == len(status)):
        raise InvalidArgumentError(f"{package} has no {'verified ' if status else ''}artifacts to publish; "
                                   "run 'zoo export' and 'zoo verify' first")
    left_out = unverified if skip_unverified else []
    unverified = [] if skip_unverified else unverified
    if unverified and not allow_unverified:
        detail = ", ".join(f"{k}: {status[k]}" for k in unverified)
        raise VerificationFailedError(f"refusing to publish {package}: {detail}; run 'zoo verify {package}' "
                                      "or pass --allow-unverified")
    verification = read_verification(package)
    peers = _peers(list(compare), config["dataset"])
    current = {k: v for k, v in verification["records"].items() if k == WEIGHTS or status.get(k) == "pass"}
    card = make_card(package, name, config, {**verification, "records": current}, unverified, peers)
    atomic_write_bytes(package / CARD, card.encode())
    files = [*write_manifest(package, exclude=left_out)["files"], MANIFEST]
    onnx = parse_records({"records": current}).get(ONNX)
    metrics = (f"accuracy {onnx.clean.accuracy:.4f}, rho2 {onnx.headline_rho2:.4f}"
               if onnx and onnx.headline_rho2 is not None else "unverified")
    message = (f"{name}: {config['arch']} on {config['dataset']} ({config.get('recipe', {}).get('name')}), "
               f"ONNX {metrics}; ddzoo {__version__}")
    target = hub_for(hub, constants.HF_ENDPOINT, org)
    return {"repo": f"{org}/{name}", "revision": revision, "message": message, "unverified": unverified,
            "left_out": left_out, **target.publish(package, name, revision, message, files)}

