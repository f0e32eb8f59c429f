"""The GPU requirements are the CPU ones with TensorFlow's CUDA build at the same version."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pins(name: str) -> dict[str, str]:
    """Package -> pinned version of a requirements file (comments and blanks skipped)."""
    result = {}
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            package, _, version = line.partition("==")
            result[package.strip()] = version.strip()
    return result


def test_gpu_requirements_pin_the_cuda_build_of_the_same_tensorflow() -> None:
    cpu, gpu = pins("training.txt"), pins("training-gpu.txt")
    assert gpu.pop("tensorflow[and-cuda]") == cpu.pop("tensorflow-cpu")
    assert gpu == cpu  # everything else identical, so both hosts train the same code
    assert "training-gpu.txt" in (ROOT / "README.md").read_text()
