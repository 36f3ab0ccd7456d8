"""How far off the colour probably is, pixel by pixel, for a model that regresses ab.

A regression network gives one colour per pixel and no spread, so it has no uncertainty of its own
to report. A small head, fitted after training on the frozen network, learns the expected size of
the network's own ab error from what the network's last layer sees (its final features and L), the
colour it predicted, and the image as a whole (the pooled bottleneck, where "this galaxy is bluer
than it looks" lives). The error's length r is scored under a two-dimensional Laplace-like law,
p(r) ∝ r / b² · exp(−r / b), whose likelihood is highest at b = E[r] / 2: the head reports 2b,
the expected error in ab units, which is also what the uncertainty map shows for a classifier.

The head predicts the error of the network's full colour on images like its training survey; the
caution that fades colour on unfamiliar images is not part of it.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .caution import pooled_features

PREFIX = "error_head."
SHAPE_KEY = PREFIX + "shape"  # (pixel channels, context channels, width), so a checkpoint rebuilds it
MIN_SCALE = 0.05  # ab units: keeps log b finite on pixels whose colour is exactly right


class ErrorHead(nn.Module):
    def __init__(self, pixel_channels: int, context_channels: int, width: int = 16) -> None:
        super().__init__()
        self.shape = (pixel_channels, context_channels, width)
        self.pixels = nn.Conv2d(pixel_channels + 2, width, 3, padding=1)
        self.context = nn.Linear(context_channels, width)
        self.mix = nn.Conv2d(width, width, 3, padding=1)
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, last_features: torch.Tensor, context: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) the network head's input, (B, K) pooled bottleneck, (B, 2, H, W) predicted ab
        -> (B, 1, H, W) the Laplace scale b in ab units (the expected error is 2b)."""
        hidden = self.pixels(torch.cat([last_features, ab / 50.0], dim=1)) + self.context(context)[..., None, None]
        hidden = F.relu(self.mix(F.relu(hidden)))
        return F.softplus(self.out(hidden)) * 5.0 + MIN_SCALE

    def tensors(self) -> dict[str, torch.Tensor]:
        weights = {PREFIX + k: v.detach().cpu().float().contiguous() for k, v in self.state_dict().items()}
        return {**weights, SHAPE_KEY: torch.tensor(self.shape, dtype=torch.int64)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> "ErrorHead | None":
        if SHAPE_KEY not in tensors:
            return None
        head = cls(*(int(x) for x in tensors[SHAPE_KEY].tolist()))
        head.load_state_dict({k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX) and k != SHAPE_KEY})
        return head.eval()


def laplace_loss(scale: torch.Tensor, error: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean negative log-likelihood of error lengths r under p(r) ∝ r / b² · exp(−r / b)."""
    nll = error / scale + 2.0 * torch.log(scale)
    return (nll * weight).sum() / weight.sum().clamp(min=1.0)


@contextmanager
def watched(network: nn.Module):
    """While the network runs, keep what the error head reads: yields ({"last": the head's input},
    the pooled bottleneck as caution collects it)."""
    if not hasattr(network, "head"):
        raise ValueError(f"{type(network).__name__} has no head for an error head to read")
    seen: dict[str, torch.Tensor] = {}
    handle = network.head.register_forward_pre_hook(lambda module, inputs: seen.__setitem__("last", inputs[0].float()))
    try:
        with pooled_features(network) as pooled:
            yield seen, pooled
    finally:
        handle.remove()
