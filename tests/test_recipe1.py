"""``experiments/recipes/recipe1.yaml`` restores the recipe that trained the committed results (docs/training.md,
"The recipe"): the current default minus EMA weights, final-weights testing, label smoothing and Δ/ΔΔ channels,
everything else kept."""

from __future__ import annotations

from mtl_aug.training import make_cli

BASE = ["--config", "experiments/base.yaml", "--config", "experiments/corpora/synthetic.yaml",
        "--config", "experiments/systems/mtl_aug.yaml", "--trainer.logger=false"]


def _callbacks(cli) -> list[str]:
    return [type(cb).__name__ for cb in cli.trainer.callbacks]


def test_recipe1_is_the_default_without_ema_final_weights_label_smoothing_and_deltas():
    default = make_cli(list(BASE), run=False)
    recipe1 = make_cli(BASE + ["--config", "experiments/recipes/recipe1.yaml"], run=False)
    assert "EMAWeightAveraging" in _callbacks(default) and "EMAWeightAveraging" not in _callbacks(recipe1)
    # the default tests the final averaged weights: no monitored checkpoint, no early stopping
    assert default.trainer.checkpoint_callback.monitor is None and "EarlyStopping" not in _callbacks(default)
    assert recipe1.trainer.checkpoint_callback.monitor == "val/uar"
    assert [c for c in _callbacks(default) if c != "EMAWeightAveraging"] == [
        c for c in _callbacks(recipe1) if c != "EarlyStopping"]
    assert default.model.encoder.deltas and not recipe1.model.encoder.deltas
    assert default.model.emotion_head.label_smoothing == 0.1 and recipe1.model.emotion_head.label_smoothing == 0.0
    stop = {type(cb).__name__: cb for cb in recipe1.trainer.callbacks}["EarlyStopping"]
    assert stop.patience == 20 and recipe1.trainer.max_epochs == default.trainer.max_epochs


def test_searched_weights_recipe_sets_the_three_loss_weights_of_the_dev_fold_search():
    """``experiments/recipes/searched_weights.yaml`` on top of the MTL-AUG system: the weights of the 30-trial search,
    everything else the default's."""
    default = make_cli(list(BASE), run=False).model
    searched = make_cli(BASE + ["--config", "experiments/recipes/searched_weights.yaml"], run=False).model
    weights = {name: task.weight for name, task in searched.tasks.items()}
    assert weights["reconstruction"] == 0.14 and weights["aug_classification"] == 0.19
    assert searched.emotion.center_lambda == 0.0001 and default.emotion.center_lambda == 0.01
    assert {n: t.weight for n, t in default.tasks.items()} == {"emotion": 1.0, "reconstruction": 1.0,
                                                                 "aug_classification": 1.0}
