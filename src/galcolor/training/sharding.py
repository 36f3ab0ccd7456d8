"""How the ranks of a torchrun run share each epoch's images."""

from __future__ import annotations

from ..errors import GalcolorError
from . import distributed


def rank_share(order: list[int], batch_size: int, rank: int, world: int) -> list[int]:
    """The images of rank `rank` in an epoch whose shuffled `order` all ranks share: disjoint from
    the other ranks' shares and equally many for each, so every rank takes the same number of steps.
    batch_size is the global batch; each step takes batch_size / world images from each rank."""
    steps = max(1, len(order) // batch_size)
    per_rank = min(batch_size // world, len(order) // world)  # a set smaller than one batch is one batch
    return order[rank::world][: steps * per_rank]


def check_shareable(batch_size: int, train_images: int, data_dir: str) -> None:
    """Refuse, before any step, a global batch or a training split that the ranks cannot share evenly."""
    world = distributed.world()
    if batch_size % world:
        raise GalcolorError(f"--batch-size {batch_size} is the global batch and must split evenly over the {world} processes "
                            f"of this torchrun run; use a multiple of {world}")
    if train_images < world:
        raise GalcolorError(f"{data_dir}: {train_images} training images cannot be shared by {world} processes")
