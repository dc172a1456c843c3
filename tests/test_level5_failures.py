"""Level-5 failures are attributed to their backend from run_level5's "failed_backends", or, in verify.json files
written before it was recorded, from the "failures" lines (f"{backend} seed {seed}: {reason}")."""

from experiments.store.parity import backend_parity

PAIR = {"first": "numpy", "second": "torch", "verdict": "equivalent"}


def _level5(**extra) -> dict:
    return {"seeds": [0, 1], "margin_points": 0.3,
            "backends": [{"backend": "numpy"}, {"backend": "torch"}], "pairs": [PAIR], "passed": False, **extra}


def _single(level5: dict) -> dict:
    return {"spec": {}, "dataset": {}, "levels": {"5": level5}, "passed": False}


def test_structured_failed_backends_attribute_each_failure() -> None:
    # a backend name holding " seed " defeats the string split: only the structured field gets it right
    lines = ["my seed net seed 0: diverged", "torch seed 1: out of memory", "my seed net seed 1: diverged"]
    level = _level5(failures=lines, failed_backends={"my seed net": [lines[0], lines[2]], "torch": [lines[1]]})
    parity = backend_parity(_single(level))
    assert list(parity) == ["numpy", "torch", "my seed net"]
    assert parity["numpy"].status == "ok" and parity["numpy"].passed
    assert parity["torch"].status == "failed" and parity["torch"].reason == lines[1]
    assert parity["torch"].figures["levels"]["5"]["failures"] == [lines[1]]
    assert parity["my seed net"].reason == f"{lines[0]}; {lines[2]}"
    assert "my" not in parity


def test_old_failure_strings_still_attribute_by_backend() -> None:
    lines = ["torch seed 0: diverged", "jax seed 1: nan loss", "torch seed 1: diverged"]
    parity = backend_parity(_single(_level5(failures=lines)))
    assert list(parity) == ["numpy", "torch", "jax"]
    assert parity["numpy"].status == "ok"
    assert parity["torch"].reason == f"{lines[0]}; {lines[2]}" and not parity["torch"].passed
    assert parity["jax"].figures["levels"]["5"]["failures"] == [lines[1]]

