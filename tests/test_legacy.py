"""Old configs and checkpoints keep loading: format-1 checkpoints of the flat module (written by c3e7071, in
tests/data) and flat ``model.*`` keys in YAML files and flags (read as shorthands of the nested keys)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from mtl_aug import recipes
from mtl_aug.tasks import legacy

DATA = Path(__file__).resolve().parent / "data"


def test_a_format1_checkpoint_loads_and_predicts_what_it_predicted():
    from mtl_aug.checkpoints import load_model

    model = load_model(DATA / "format1_tiny.ckpt", "cpu")
    assert model.checkpoint_format == 1 and model.hparams["front_end"]["init_args"]["prosody"] is True
    assert model.aug_head is None and model.decoder is not None  # w_aug=0: never built
    ref = json.loads((DATA / "format1_tiny.json").read_text())
    g = torch.Generator().manual_seed(ref["seed"])
    wave, lengths = 0.1 * torch.randn(2, 8000, generator=g), torch.tensor(ref["lengths"])
    wave[1, 5000:] = 0
    with torch.no_grad():
        probs = torch.softmax(model.network(wave, lengths), -1)
    assert torch.allclose(probs, torch.tensor(ref["probs"]), atol=1e-6)  # the probabilities c3e7071 computed


def test_a_format1_speaker_normalised_checkpoint_loads_for_evaluation_only():
    from mtl_aug.checkpoints import CheckpointError, load_model
    from mtl_aug.tasks import MTLAugModule

    path = DATA / "format1_tiny_speakernorm.ckpt"
    with pytest.raises(CheckpointError, match="speaker-level"):
        load_model(path)
    model = MTLAugModule.load_from_checkpoint(path)  # the cv drivers' path (noise, adversarial)
    assert model.hparams["front_end"]["init_args"]["normalize"] == "speaker"  # was "none" + a callback
    assert model.network.group_norm.stats["c:s1"][1].tolist() == [2.0] * 19


def test_state_dict_names_of_format1_map_to_format2():
    old = {"front_end.mel.mel_scale.fb": 1, "encoder.proj.weight": 2, "emotion_head.classifier.bias": 3,
           "func_mean": 4, "decoder.out.bias": 5, "aug_head.mlp.0.weight": 6, "augment.augs.1.speeds.0.resampler.kernel": 7}
    assert legacy.migrate_state_dict(old) == {
        "network.front_end.mel.mel_scale.fb": 1, "network.encoder.proj.weight": 2, "network.head.classifier.bias": 3,
        "network.func_mean": 4, "tasks.reconstruction.head.out.bias": 5, "tasks.aug_classification.head.mlp.0.weight": 6,
        "augment.augs.1.speeds.0.resampler.kernel": 7}


FLAT_STL = {"augment": False, "w_recon": 0.0, "w_aug": 0.0, "lr": 0.002, "weight_decay": 0.0001, "scheduler": "cosine",
            "class_weights": "balanced", "enc_deltas": True, "label_smoothing": 0.1}  # the last two: base.yaml's recipe


def test_flat_configs_and_flags_resolve_to_the_nested_config(tmp_path, capsys):
    """The pre-issue-33 stl system (flat keys) + flat flags == base.yaml + systems/stl.yaml + nested flags."""
    from mtl_aug.training import make_cli

    old = tmp_path / "old_stl.yaml"
    old.write_text(yaml.safe_dump({"model": FLAT_STL, "data": {"use_unlabelled": False}}))
    trainer = yaml.safe_load(Path("experiments/base.yaml").read_text())
    base = tmp_path / "base_without_model.yaml"
    base.write_text(yaml.safe_dump({k: v for k, v in trainer.items() if k != "model"}))

    def resolved(args):
        with pytest.raises(SystemExit):
            make_cli([*args, "--config", "experiments/corpora/synthetic.yaml", "--print_config"], run=False)
        return yaml.safe_load(capsys.readouterr().out)["model"]

    flat = resolved(["--config", str(base), "--config", str(old), "--model.head_dropout=0.4", "--model.n_mels", "32",
                     "--model.augment=true"])
    nested = resolved(["--config", "experiments/base.yaml", "--config", "experiments/systems/stl.yaml",
                       "--model.emotion.init_args.dropout=0.4", "--model.aug_classification.init_args.dropout=0.4",
                       "--model.front_end.init_args.n_mels=32", "--model.augment.init_args.enabled=true"])
    assert flat == nested
    assert nested["augment"]["init_args"]["enabled"] is True and nested["reconstruction"]["init_args"]["weight"] == 0.0


def test_translation_of_one_flag_or_section():
    assert recipes.translate_args(["--model.w_recon=0.5", "--model.seed", "3", "--model.augment=mtl_aug.augment.X",
                                   "--trainer.max_epochs=2"]) == [
        "--model.reconstruction.init_args.weight=0.5", "--model.augment.init_args.seed=3",
        "--model.augment=mtl_aug.augment.X", "--trainer.max_epochs=2"]
    assert legacy.nested_partial({"head_dropout": 0.5, "tta_crops": 3, "front_end": {"class_path": "x"}, "n_mels": 8}) == {
        "emotion": {"init_args": {"dropout": 0.5}}, "aug_classification": {"init_args": {"dropout": 0.5}},
        "tta_crops": 3, "front_end": {"class_path": "x", "init_args": {"n_mels": 8}}}
    with pytest.raises(ValueError, match="not settings of the flat"):
        legacy.nested_from_flat({"n_mel": 64})


def test_every_committed_config_is_nested():
    """The repository's own YAML files use the nested keys (the flat ones are read, not written)."""
    flat = []
    files = [*Path("experiments").glob("*.yaml"), *(p for d in ("corpora", "systems", "recipes")
                                                    for p in Path("experiments", d).glob("*.yaml"))]
    for path in sorted(files):
        data = yaml.safe_load(path.read_text()) or {}
        section = data.get("model") if isinstance(data, dict) and data.get("family") != "baseline" else None
        if isinstance(section, dict) and legacy.is_flat(section):
            flat.append(str(path))
    assert not flat, flat


def test_a_pretrained_encoder_file_of_the_flat_module_initialises_the_new_one():
    """``--model.init_from`` with a file ``python -m mtl_aug pretrain`` wrote before issue 33 (tests/data)."""
    from mtl_aug.tasks import MTLAugModule
    from mtl_aug.tasks.pretrained import PretrainError, load_parts

    path = DATA / "format1_encoder.pt"
    saved = torch.load(path, weights_only=True)["state_dict"]
    tiny = dict(n_mels=16, enc_channels=[4, 4], enc_time_pool=[1, 2], enc_freq_pool=[2, 2], enc_out_dim=8,
                lstm_hidden=4, attn_dim=4, embed_dim=4, dec_hidden=8, aug_hidden=4)
    model = MTLAugModule.from_flat(**tiny)
    assert load_parts(model, path, ["front_end", "encoder", "decoder", "aug_head"]) == ["front_end", "encoder",
                                                                                       "decoder", "aug_head"]
    for part in ("encoder", "decoder", "aug_head"):
        for k, v in getattr(model, part).state_dict().items():
            assert torch.equal(v, saved[f"{part}.{k}"]), (part, k)
    with pytest.raises(PretrainError, match=r"n_mels=16.*enc_channels=\[4, 4\]"):  # its architecture, named
        load_parts(MTLAugModule.from_flat(**(tiny | {"enc_channels": [4, 8]})), path, ["encoder"])
