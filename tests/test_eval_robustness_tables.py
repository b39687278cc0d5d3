"""The combined noise / adversarial tables: one protocol line per group of systems that share it, never one
system's protocol printed over another's (utterance- and speaker-normalised systems in one results folder)."""
import json

from mtl_aug.evaluation import adversarial, noise

UTT = "emodb, LOSO; trained on clean speech"
SPK = UTT + "; speaker-level log-mel normalisation"


def stat(mean: float) -> dict:
    return {"mean": mean, "std": 0.01, "n": 2}


def write_summary(root, system: str, kind: str, protocol: str, conditions: dict[str, float]) -> None:
    out = root / system / kind
    out.mkdir(parents=True)
    conds = {c: {"uar": stat(v), "pooled_uar": stat(v + 0.01)} for c, v in conditions.items()}
    (out / "summary.json").write_text(json.dumps({"protocol": protocol, "seeds": [0, 1], "conditions": conds}))


def sections(md: str) -> list[tuple[str, list[str]]]:
    """``[(protocol line, system names of the table rows below it up to the next protocol line)]``."""
    out: list[tuple[str, list[str]]] = []
    for line in md.splitlines():
        if line.startswith("Protocol: "):
            out.append((line, []))
        elif line.startswith("| ") and not line.startswith("| system") and out:
            out[-1][1].append(line.split("|")[1].strip())
    return out


def test_noise_table_groups_systems_by_protocol(tmp_path):
    conds = {"clean": 0.80, "20 dB": 0.70, "0 dB": 0.50}
    write_summary(tmp_path, "stl", "noise", UTT, conds)
    write_summary(tmp_path, "mtl_aug", "noise", UTT, conds)
    write_summary(tmp_path, "stl_speakernorm", "noise", SPK, conds)
    noise.write_combined(tmp_path, "noise", list(conds), "UAR vs SNR", "SNR")
    got = sections((tmp_path / "noise.md").read_text())
    # two tables (fold mean, pooled) under each protocol, each system under its own protocol only
    assert [p for p, _ in got] == [f"Protocol: {UTT}. UAR in %, mean ± std over seeds (a seed's UAR = mean of "
                                   "its per-fold UARs).", f"Protocol: {SPK}. UAR in %, mean ± std over seeds (a "
                                   "seed's UAR = mean of its per-fold UARs)."]
    assert got[0][1] == ["stl", "mtl_aug"] * 2 and got[1][1] == ["stl_speakernorm"] * 2
    assert (tmp_path / "noise.png").stat().st_size > 0


def test_noise_table_single_protocol_has_one_protocol_line(tmp_path):
    write_summary(tmp_path, "stl", "noise", UTT, {"clean": 0.8})
    write_summary(tmp_path, "mtl_aug", "noise", UTT, {"clean": 0.7})
    noise.write_combined(tmp_path, "noise", ["clean"], "UAR vs SNR", "SNR")
    got = sections((tmp_path / "noise.md").read_text())
    assert len(got) == 1 and got[0][1] == ["stl", "mtl_aug", "stl", "mtl_aug"]


def test_adversarial_table_groups_systems_by_protocol(tmp_path):
    conds = {"clean": 0.8, "fgsm 30 dB": 0.6, "pgd 30 dB": 0.2}
    write_summary(tmp_path, "mtl_aug_speakernorm", "adversarial", SPK, conds)
    write_summary(tmp_path, "stl", "adversarial", UTT, conds)
    adversarial.write_combined(tmp_path, ["fgsm", "pgd"], [30], "emodb")
    md = (tmp_path / "adversarial.md").read_text()
    got = sections(md)
    assert [p.split(".")[0] for p, _ in got] == [f"Protocol: {UTT}", f"Protocol: {SPK}"]
    assert got[0][1] == ["stl", "stl"] and got[1][1] == ["mtl_aug_speakernorm"] * 2
    assert "| stl | 0,1 | PGD | 80.0 ± 1.0 | 20.0 ± 1.0 |" in md
