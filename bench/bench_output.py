"""What the CPU benchmarks under bench/ report besides their figures: the machine they ran on (:func:`machine`), and
for those with ``--out`` the JSON report itself, printed and written (:func:`emit`). A script run as ``python bench/NAME.py`` imports this file as a
sibling module."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def machine(**extra) -> dict:
    """CPU model (``/proc/cpuinfo``'s model name, else the platform's), visible cores, Python, and the load average
    (1, 5, 15 min) when called: on a shared machine, only ratios measured in one run mean anything."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "load_average_1_5_15": load, **extra}


def emit(report: dict, out: Path | None = None) -> None:
    """Print the report as indented JSON, and write the same text to ``out``."""
    text = json.dumps(report, indent=2)
    if out is not None:
        out.write_text(text + "\n")
    print(text)
