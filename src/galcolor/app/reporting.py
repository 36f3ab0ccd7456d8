"""What every command shares in telling the user: exit codes, quiet-aware printing, strict JSON."""

from __future__ import annotations

import math

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


def _say(args, text: str) -> None:
    if not args.quiet and not args.json:
        print(text)


def _json_safe(value):
    """NaN/Inf -> null (json.dumps writes them as the non-JSON tokens NaN/Infinity otherwise)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:  # numpy scalars
        return _json_safe(value.item())
    return value
