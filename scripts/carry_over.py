"""Put a decoder fine-tuned with `galcolor train --freeze encoder|network --init-from BASE` into BASE's model, keeping
BASE's caution, recogniser, galaxy-colour stage, saturations and science calibration (galcolor.training.carry_over).

    python scripts/carry_over.py runs/colour-layout/last.safetensors --base src/galcolor/weights/galcolor-unet.safetensors -o candidate.safetensors
"""

import argparse
import sys
from pathlib import Path

from galcolor.app.api import load_model
from galcolor.errors import GalcolorError
from galcolor.models.checkpoint import save_model
from galcolor.training.carry_over import carry_over


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trained", type=Path, help="the fine-tuned run's checkpoint")
    parser.add_argument("--base", type=Path, required=True, help="the model it was initialised from")
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        save_model(carry_over(load_model(args.trained), load_model(args.base)), args.out)
    except GalcolorError as err:
        print(f"carry_over: error: {err}", file=sys.stderr)
        return 1
    print(f"{args.out}: {args.base}'s model with the colour network of {args.trained}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
