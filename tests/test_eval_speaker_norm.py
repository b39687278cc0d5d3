"""Speaker-level log-mel normalisation (mtl_aug.features: group_stats, GroupNormalization; in the network)."""

import torch

from mtl_aug.features import GroupNormalization, LogMelFrontEnd, group_stats
from mtl_aug.network import EmotionNetwork


def test_group_stats_and_normalisation_per_group():
    g = torch.Generator().manual_seed(0)
    waves = [0.1 * torch.randn(n, generator=g) for n in (4000, 3000, 5000, 3500)]
    waves[2] = waves[2] * 5  # speaker B is louder
    groups = ["c:A", "c:A", "c:B", "c:B"]
    base = LogMelFrontEnd(n_mels=16, normalize="none")
    stats = group_stats(base, waves, groups, batch_size=3)
    # statistics of group A = mean/std over all valid frames of its two utterances
    feats = [base(w.unsqueeze(0), torch.tensor([w.numel()]))[0][0] for w in waves[:2]]
    frames = torch.cat(feats)
    assert torch.allclose(stats["c:A"][0], frames.mean(0), atol=1e-4)
    assert torch.allclose(stats["c:A"][1], frames.std(0, unbiased=False), atol=1e-3)

    norm = GroupNormalization("speaker")
    norm.stats = stats
    assert norm.names(["c", "c"], ["A", "B"]) == ["c:A", "c:B"]
    # a speaker-normalised front end does not normalise by itself; the network holds the group stage,
    # which has no state-dict entry: checkpoints keep the plain model's keys
    front = LogMelFrontEnd(n_mels=16, normalize="speaker")
    net = EmotionNetwork(front, torch.nn.Identity())
    assert net.group_norm is not None and net.group_norm.mode == "speaker"
    assert set(net.state_dict()) == {f"front_end.{k}" for k in LogMelFrontEnd(n_mels=16).state_dict()}
    lengths = torch.tensor([w.numel() for w in waves])
    batch = torch.zeros(4, int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : w.numel()] = w
    net.group_norm.stats = stats
    out, fl = net.features(batch, lengths, groups)
    raw, _ = base(batch, lengths)
    assert torch.equal(front(batch, lengths)[0], raw)  # "speaker": the front end's own output is unnormalised
    for i, grp in enumerate(groups):
        n = int(fl[i])
        mean, std = stats[grp]
        assert torch.allclose(out[i, :n], (raw[i, :n] - mean) / std, atol=1e-5)
        assert float(out[i, n:].abs().sum()) == 0.0  # padding stays zero
    # over each group's frames the normalised features have zero mean, unit variance
    a = torch.cat([out[0, : int(fl[0])], out[1, : int(fl[1])]])
    assert torch.allclose(a.mean(0), torch.zeros(16), atol=1e-4)
    assert torch.allclose(a.std(0, unbiased=False), torch.ones(16), atol=1e-2)
    # rows without a group, or of a group without statistics, are an error, not silently unnormalised
    import pytest

    with pytest.raises(RuntimeError, match="row group"):
        net.features(batch, lengths, None)
    with pytest.raises(KeyError, match="no statistics"):
        net.features(batch, lengths, ["c:A", "c:A", "c:B", "c:Z"])
