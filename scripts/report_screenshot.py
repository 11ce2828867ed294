"""Make the README's picture of `claimdiff report`: the synthetic set, judged by the labels judge
with two-pass verification, position swaps and a lambda sweep, reported by edit kind, and
photographed in headless Chromium. Usage: .venv/bin/python scripts/report_screenshot.py [OUT]"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claimdiff.cli import main
from tests.quality_support import SWEEP_CONFIG
from tests.support.browser import chromium_path, headless_chromium


def shoot(target: Path) -> None:
    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("chromium is not installed (scripts/ensure_chromium.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        assert main(["synth", "--n", "40", "--seed", "0", "--out", str(root / "data")]) == 0
        (root / "judge.yaml").write_text(SWEEP_CONFIG, encoding="utf-8")
        assert main(["judge", "--manifest", str(root / "data" / "manifest.jsonl"),
                     "--output", str(root / "run"), "--config", str(root / "judge.yaml"),
                     "--run-id", "synthetic-40"]) == 0
        assert main(["report", str(root / "run"), "--by", "edit"]) == 0
        with headless_chromium(chromium) as browser:
            _, visit = browser.visit((root / "run" / "report" / "index.html").as_uri(),
                                     screenshot=target)
        if visit.problems:
            raise SystemExit(f"the page had problems: {visit.problems}")
    print(target)


if __name__ == "__main__":
    shoot(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/report-screenshot.png"))
