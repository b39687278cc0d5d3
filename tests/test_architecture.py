"""The layering of the package (docs/architecture.md): no import runs up the layers, no import cycle, no module
over 300 lines; one forward path (the network) for validation, predict, export and the attacks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

PACKAGE = Path(__file__).resolve().parents[1] / "mtl_aug"
MAX_LINES = 300

# module path (relative to the package, without .py) -> layer; the first matching prefix wins
LAYERS = [
    (("__init__", "io", "provenance", "tables", "masking", "allocator"), 0, "core"),
    (("data/",), 1, "data"),
    (("features", "encoder", "augment", "augmentations", "heads/", "metrics", "network"), 2, "model"),
    (("tasks/",), 3, "tasks"),
    (("training", "recipes", "checkpoints", "callbacks", "pretrain", "baseline/"), 4, "training"),
    (("evaluation/",), 5, "evaluation"),
    (("inference/", "sweep/", "cli", "__main__"), 6, "inference/sweep"),
]


def modules() -> dict[str, Path]:
    """``{dotted name: file}`` of every module of the package (packages under their ``__init__``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def layer(name: str) -> tuple[int, str]:
    rel = name[len("mtl_aug."):].replace(".", "/") if name != "mtl_aug" else "__init__"
    is_package = (PACKAGE / rel / "__init__.py").exists()
    for prefixes, index, label in LAYERS:
        for p in prefixes:
            if rel == p or rel == p.rstrip("/") or (p.endswith("/") and (rel + "/").startswith(p)) or \
                    (is_package and p == rel + "/"):
                return index, label
    raise AssertionError(f"module {name} is in no layer of docs/architecture.md")


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every project module ``name`` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # "mtl_aug.data.folds.read_folds" -> its module
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_module_has_a_layer_and_no_import_runs_up_the_layers():
    upward = []
    for name, deps in graph().items():
        mine = layer(name)
        for dep in deps:
            theirs = layer(dep)
            if theirs[0] > mine[0]:
                upward.append(f"{name} ({mine[1]}) imports {dep} ({theirs[1]})")
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    g = graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            # a package's __init__ importing its own submodules is not a cycle of the design
            members = [m for m in scc if not any(o != m and o.startswith(m + ".") for o in scc)]
            if len(members) > 1:
                cycles.append(sorted(scc))

    for v in g:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_no_module_over_300_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_one_forward_path_for_validation_predict_export_and_attacks(monkeypatch):
    from mtl_aug.evaluation import adversarial
    from mtl_aug.inference import export, predict
    from mtl_aug.network import EmotionNetwork
    from mtl_aug.tasks import MTLAugModule
    from tests.test_model_module import TINY, utterances

    torch.manual_seed(0)
    model = MTLAugModule.from_flat(**TINY).eval()
    calls = []
    real = EmotionNetwork.forward

    def counted(self, *a, **k):
        calls.append(self)
        return real(self, *a, **k)

    monkeypatch.setattr(EmotionNetwork, "forward", counted)
    model.log = model.log_dict = lambda *a, **k: None
    batch = utterances(3)

    def through_the_network(action) -> bool:
        before = len(calls)
        action()
        return len(calls) > before

    with torch.no_grad():
        assert through_the_network(lambda: model.validation_step(batch, 0))
        assert through_the_network(lambda: predict.predict_waveform(model, batch["wave"][0], window=0.25, hop=0.25))
        wave, lengths = export.example_inputs(16000)
        assert through_the_network(lambda: export.reference_probs(model, wave, lengths))
        assert through_the_network(lambda: export.ProbabilityModel(model)(wave, lengths))  # what export traces
    batch["corpus"] = ["c"] * 3
    assert through_the_network(lambda: adversarial.attack_batch(model, batch, "fgsm", 30.0, 1))
    assert all(isinstance(net, EmotionNetwork) for net in calls)


@pytest.mark.parametrize("name", ["data", "evaluation", "inference"])
def test_lower_layers_do_not_reach_up(name):
    """The imports the issue named (data -> evaluation, inference -> evaluation, evaluation -> inference)."""
    g = graph()
    bad = {"data": "mtl_aug.evaluation", "evaluation": "mtl_aug.inference", "inference": "mtl_aug.evaluation"}[name]
    offenders = [f"{m} -> {d}" for m, deps in g.items() if m.startswith(f"mtl_aug.{name}") for d in deps
                 if d.startswith(bad)]
    assert not offenders, offenders
