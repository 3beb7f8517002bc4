import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _render_module():
    spec = importlib.util.spec_from_file_location("render", REPO / "docs" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_state_machine_picture_was_drawn_from_the_current_asl():
    render = _render_module()
    recorded = (REPO / "docs" / "state-machine.sha256").read_text().strip()
    assert recorded == render.asl_digest(), "docs/state-machine.png is older than the ASL: run `make docs`"
    assert (REPO / "docs" / "state-machine.png").stat().st_size > 10_000


def test_the_picture_shows_every_state_and_transition():
    render = _render_module()
    definition = json.loads((REPO / "statemachine" / "training_gate.asl.json").read_text())
    dot = render.state_machine_dot(definition)
    for name, state in definition["States"].items():
        assert f'"{name}" [' in dot
        if "Next" in state:
            assert f'"{name}" -> "{state["Next"]}"' in dot
