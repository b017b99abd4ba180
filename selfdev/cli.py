"""`selfdev`: the command line. Each command parses options and calls one stage; no logic lives here."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Iterator, Optional

import typer

from evals.errors import EvalsError
from seeds.errors import SeedError
from selfdev.errors import UserError

# One user-error base per package; everything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, SeedError, EvalsError, FileNotFoundError)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print a user's mistake as one line on stderr and exit 1, no traceback."""
    try:
        yield
    except USER_ERRORS as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        typer.secho(f"error: {message}", fg="red", err=True)
        raise typer.Exit(1) from None


app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False)


@app.callback()
def selfdev() -> None:
    """A language model invents model-merging algorithms and improves itself (Self-Developing)."""


from sandbox.cli import app as sandbox_app  # noqa: E402  (the sandbox stage brings its own sub-commands)

app.add_typer(sandbox_app, name="sandbox", help="Check generated merge functions in the sandbox.")


@app.command("eval")
def eval_command(
    model: str = typer.Option("qwen2.5-coder-0.5b-instruct", help="Embedded seed name, HF folder or hub id."),
    task: str = typer.Option("gsm8k", help="gsm8k, math or arithmetic."),
    split: str = typer.Option("dev", help="dev, test (or train where the task has one)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Evaluate only the first N examples of the split."),
    data_dir: Optional[Path] = typer.Option(
        None, envvar="SELFDEV_DATA_DIR", help="Local data folder (gsm8k/*.jsonl, math/test.jsonl); default: the hub."
    ),
    out: Optional[Path] = typer.Option(None, help="Output folder; default runs/eval/<model>-<task>-<split>-<time>."),
    backend: str = typer.Option("transformers", help="transformers (CPU) or vllm (GPU, `pip install '.\\[gpu]'`)."),
    batch_size: int = typer.Option(64, min=1, help="Rows decoded together."),
    dtype: str = typer.Option("auto", help="auto (bfloat16 where this machine runs it fast, else float32), float32 or bfloat16."),
) -> None:
    """Few-shot greedy accuracy of a model on a task split, with every example written as JSONL."""
    from evals.backends.config import BackendConfig
    from evals.backends.registry import load_backend
    from evals.data import resolve_data_dir
    from evals.evaluate import evaluate
    from evals.tasks import get_task
    from seeds import resolve_model

    with user_errors():
        if dtype not in ("auto", "float32", "bfloat16"):
            raise UserError(f"--dtype must be auto, float32 or bfloat16, got {dtype!r}")
        if backend not in ("transformers", "vllm"):
            raise UserError(f"--backend must be transformers or vllm, got {backend!r}")
        the_task = get_task(task)
        examples = the_task.examples(split, resolve_data_dir(data_dir), limit)
        # After the cheap checks: the embedded seed's first use builds its folder (2.5 min on AVX2).
        path = resolve_model(model)
        out = out or Path("runs/eval") / f"{Path(model).name}-{the_task.name}-{split}-{time.strftime('%Y%m%d-%H%M%S')}"
        out.mkdir(parents=True, exist_ok=True)
        generation = load_backend(path, BackendConfig(name=backend, batch_size=batch_size, dtype=dtype))
        report = evaluate(generation, the_task, examples, out_path=out / "records.jsonl")
    typer.echo(
        f"{the_task.name} {split}: accuracy {report.accuracy:.3f} ± {report.stderr:.3f} "
        f"({report.correct}/{report.n}) in {report.seconds:.0f} s, {report.tokens_per_second:.1f} tokens/s"
    )
    typer.echo(f"split {report.split_info.ids_sha256[:12]} (seed {report.split_info.seed}); records in {out}")
    (out / "report.json").write_text(json.dumps(report.to_dict(records=False), indent=2, default=str))


@app.command("baselines")
def baselines_command(
    config: Path = typer.Option(..., "--config", help="Baselines YAML (see configs/baselines-embedded.yaml)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Run folder; overrides the config's `output`."),
    data_dir: Optional[Path] = typer.Option(
        None, envvar="SELFDEV_DATA_DIR", help="Local data folder; overrides the config's `data_dir`."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Tune task arithmetic, TIES, DARE-TIES, breadcrumbs and Model Stock on the dev set (finished points are reused)."""
    from selfdev.config import BaselinesConfig
    from selfdev.merging.baselines import run_baselines
    from selfdev.merging.baselines_report import render_markdown

    with user_errors():
        cfg = BaselinesConfig.load(config)
        overrides = {"output": output, "data_dir": str(data_dir) if data_dir else None}
        cfg = cfg.model_copy(update={k: v for k, v in overrides.items() if v is not None})
        summary = run_baselines(cfg, log=lambda line: typer.echo(line, err=True), progress=not quiet)
    typer.echo(render_markdown(summary).split("\n## ")[0].rstrip())
    typer.echo(f"\nbaselines.json, baselines.md and results.jsonl in {cfg.output}")


@app.command("export")
def export_command(
    run: Path = typer.Option(..., "--run", help="A discovery run folder, or its archive.sqlite."),
    top: int = typer.Option(3, "--top", min=1, help="Export the K best algorithms by dev score."),
    out: Path = typer.Option(..., "--out", help="Folder for the .py files, plugins, example configs and README.md."),
    filter: str = typer.Option("mlp", "--filter", help="The tensor filter the algorithms were found with."),
) -> None:
    """Write the best discovered algorithms as documented .py files with mergekit plugins and example configs."""
    from selfdev.export import export_algorithms, load_top_candidates

    with user_errors():
        paths = export_algorithms(load_top_candidates(run, top), out, filter=filter)
    for path in paths:
        typer.echo(f"exported {path}")
    typer.echo(f"index: {out / 'README.md'}")


@app.command(
    "apply",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
)
def apply_command(
    ctx: typer.Context,
    algorithm: Optional[Path] = typer.Option(None, "--algorithm", help="An exported algorithm .py file."),
    config: Optional[Path] = typer.Option(None, "--config", help="A mergekit YAML; merge_method may name an exported algorithm."),
    base: Optional[str] = typer.Option(None, "--base", help="Seed model: embedded name, HF folder or hub id."),
    experts: Optional[list[str]] = typer.Option(None, "--experts", help="Expert models: --experts A B C."),
    out: Path = typer.Option(..., "--out", help="Output HF model folder (must be new or empty)."),
    filter: str = typer.Option("mlp", "--filter", help="Tensors to merge: mlp, all-linear, all or re:<pattern>."),
    seed: int = typer.Option(0, "--seed", help="Seed handed to the algorithm's random generator."),
    shard_size: Optional[str] = typer.Option(None, "--shard-size", help="Output shard size, e.g. 500M or 2B (bytes)."),
) -> None:
    """Merge models with an exported algorithm through mergekit, streaming, into a loadable HF folder."""
    from mergekit.common import parse_kmb

    from selfdev.apply import apply_algorithm, apply_config

    with user_errors():
        # `--experts A B C`: click gives an option one value, the rest arrive as extra arguments.
        if ctx.args and not experts:
            raise UserError(f"unexpected arguments: {' '.join(ctx.args)}")
        experts = [*(experts or []), *ctx.args]
        shard_bytes = parse_kmb(shard_size) if shard_size else None
        start = time.perf_counter()
        if config is not None:
            if base or experts:
                raise UserError("--config names its own models; drop --base/--experts")
            result = apply_config(config, out, algorithms=[algorithm] if algorithm else [], shard_bytes=shard_bytes)
        else:
            if algorithm is None or base is None or not experts:
                raise UserError("give --algorithm, --base and --experts (or --config)")
            result = apply_algorithm(algorithm, base, experts, out, filter=filter, seed=seed, shard_bytes=shard_bytes)
    shards = sorted(result.glob("*.safetensors"))
    size = sum(p.stat().st_size for p in shards) / 1e9
    typer.echo(f"wrote {result}: {len(shards)} shard(s), {size:.2f} GB in {time.perf_counter() - start:.0f} s")


@app.command("experts")
def experts_command(
    config: Path = typer.Option(..., "--config", help="Debate YAML (e.g. configs/experts-embedded.yaml)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Run folder; finished stages in it are reused. Default: the cache folder discovery reuses."
    ),
    data_dir: Optional[Path] = typer.Option(None, envvar="SELFDEV_DATA_DIR", help="Local data folder; default: the hub."),
) -> None:
    """Turn the seed into experts by multiagent debate finetuning; print the metrics table."""
    from seeds.debate import build_experts, default_out_dir, load_debate_config
    from selfdev.progress import timestamped

    with user_errors():
        start = time.perf_counter()
        settings = load_debate_config(config)
        out = out or default_out_dir(settings)
        manifest = build_experts(settings, out, data_dir=data_dir, log=timestamped(typer.echo))
    typer.echo(f"{len(manifest.experts)} experts in {out} ({time.perf_counter() - start:.0f} s); manifest {out / 'experts.json'}")


@app.command("discover")
def discover_command(
    config: Optional[Path] = typer.Option(None, help="Discovery YAML (e.g. configs/embedded.yaml); with --resume, the run's own."),
    out: Path = typer.Option(Path("runs/discover"), help="Run folder."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its archive."),
    data_dir: Optional[Path] = typer.Option(None, envvar="SELFDEV_DATA_DIR", help="Local data folder; default: the hub."),
    budget_minutes: Optional[float] = typer.Option(
        None, min=0, help="Wall-clock budget the run is sized to (overrides the config's budget.minutes; 0: none)."
    ),
) -> None:
    """Invent merge algorithms, score them, train the generator by DPO, repeat; then test the best and report."""
    from evals.data import resolve_data_dir
    from selfdev.config import DiscoveryConfig
    from selfdev.experts_source import refuse_contamination
    from selfdev.loop import discover
    from selfdev.progress import timestamped
    from selfdev.report import print_summary, write_report
    from selfdev.run_dir import RunDir

    with user_errors():
        source = config or (RunDir(out).config if resume else None)
        if source is None:
            raise UserError("give --config (or --resume with an existing --out)")
        settings = DiscoveryConfig.load(source)
        if budget_minutes is not None:
            limit = budget_minutes or None
            settings = settings.model_copy(update={"budget": settings.budget.model_copy(update={"minutes": limit})})
        data = resolve_data_dir(settings.data_dir or data_dir)
        refuse_contamination(settings.experts, settings.task, data)
        try:
            log = timestamped(typer.echo)
            run = discover(settings, out, resume=resume, data_dir=data, log=log)
        except KeyboardInterrupt:
            typer.secho(f"interrupted: finished candidates are in {out / 'archive.sqlite'}; "
                        f"continue with: selfdev discover --out {out} --resume", fg="yellow", err=True)
            raise typer.Exit(130) from None
        index = write_report(run.root)
    print_summary(run.root)
    typer.echo(f"report: {index}")


@app.command("report")
def report_command(run: Path = typer.Argument(..., help="A `selfdev discover` run folder.")) -> None:
    """(Re)write a run's report (plots, tables, HTML) and print its summary."""
    from selfdev.report import print_summary, write_report

    with user_errors():
        if not (run / "archive.sqlite").is_file():
            raise UserError(f"{run} is not a discovery run (no archive.sqlite)")
        index = write_report(run)
    print_summary(run)
    typer.echo(f"report: {index}")
