"""W&B sweeps over MTL-AUG's loss weights and augmentation settings, online and offline.

* ``mtl_aug.sweep.config``    -- the sweep YAML (W&B's format): checks, draws, grid, rendered command
* ``mtl_aug.sweep.runner``    -- ``python -m mtl_aug sweep``: the offline runner (``main`` below)
* ``mtl_aug.sweep.objective`` -- the sweeps' program: mean validation UAR over dev folds
  (run as ``python -m mtl_aug.sweep.objective``; not imported here)
"""

from mtl_aug.sweep.runner import main

__all__ = ["main"]
