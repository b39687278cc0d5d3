"""DEMAND multichannel environmental noise (Thiemann et al. 2013), for noise robustness tests.

Layout (the release's zip files unpacked side by side): ``<root>/<ENV>/ch01.wav .. ch16.wav``,
16 single-channel files per environment (DKITCHEN, NPARK, STRAFFIC, ...; 48 kHz or 16 kHz).
The channels of one environment are the same scene from a 16-mic array, so one channel (ch01) per
environment is used. Key = the environment; raw_label = "real".
"""

from __future__ import annotations

from pathlib import Path

from ._common import Collector, is_hidden
from .base import BuildResult, register_corpus

CHANNEL = "ch01"


@register_corpus("demand", env_var="DEMAND_ROOT", kind="noise", layout="<root>/<ENV>/ch01.wav")
def build_demand(root: Path, progress: bool = False) -> BuildResult:
    c = Collector("demand", root, progress)
    envs = sorted(d for d in root.iterdir() if d.is_dir() and not is_hidden(d, root))
    for env in c.iterate(envs):
        channel = [p for p in c.scan([f"{CHANNEL}.*"], base=env)]
        if not channel:
            if any(env.glob("ch*.wav")):
                c.skip(env, f"environment folder without {CHANNEL}.wav")
            continue  # a folder without channel files is not an environment
        c.add(channel[0], key=env.name, session=env.name, raw_label="real")
    return c.result()
