"""Move a shipped hyperprior model to other rate levels without training.

Each gain bank is a smooth function of log(lambda) (:func:`relevel_state`), so a level
past the top can be read off that curve: the transforms and every existing level stay
bit-identical, and the file gains a higher rate level. This is how ``aec-hp-ckbd``'s
tenth level (lambda 0.6) was made::

    python -m neuralcodec.training.relevel aec-hp-ckbd \\
        --lambdas 0.00033,0.0009,0.002,0.0046,0.0104,0.0235,0.053,0.12,0.27,0.6 \\
        --export aec-hp-ckbd --export-dir neuralcodec/weights

The model card keeps its training history, with the move recorded in ``relevels``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import AecError
from ..families.hyperprior import FAMILY
from ..families.hyperprior.architecture import ModelConfig
from ..families.hyperprior.weights import save_model
from ..families.zoo import find_model
from .hyperprior import TrainOptions, initial_state, new_model


def relevel_model(init: str, lambdas: list[float], name: str, directory: str | Path) -> Path:
    """Write ``init``'s weights moved to ``lambdas`` as model ``name`` in ``directory``."""
    info = find_model(init)
    if info.family != FAMILY.name:
        raise AecError(f"model '{info.name}' is not a {FAMILY.name} model")
    config = ModelConfig.from_dict({**info.card["config"], "lambdas": lambdas})
    state = initial_state(TrainOptions(data=[], init=init, relevel=True,
                                       config=config.to_dict()))
    model = new_model(config)
    model.load_state_dict(state["model"])
    card = {k: v for k, v in info.card.items() if k not in ("name", "family", "config")}
    card["training"] = {**card.get("training", {}), "relevels": state["relevels"]}
    return save_model(model, Path(directory), name, card)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("init", help="model name or .safetensors file")
    parser.add_argument("--lambdas", required=True, help="comma-separated, increasing")
    parser.add_argument("--export", required=True, help="name of the written model")
    parser.add_argument("--export-dir", default="models")
    args = parser.parse_args(argv)
    try:
        lambdas = [float(v) for v in args.lambdas.split(",")]
        path = relevel_model(args.init, lambdas, args.export, args.export_dir)
    except (AecError, ValueError) as exc:
        print(f"relevel: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
