"""``onebit bench``: time binary conv layers (``--layer``) or a model file (``MODEL``).

``onebit bench --layer 56x56x64-64[,k=3,s=1]`` times one binary conv layer per ISA, thread count
and pipeline (``onebit.bench.layers``); ``onebit bench model.onebit`` times a model file
(``onebit.bench.model``), with ``--vs`` its peers in the same run and ``--baseline other.onebit``
a second file interleaved with it (pruned vs unpruned in one run, ratios in the table and the
records). Torch-free.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from onebit.bench.layers import PIPELINES, REFERENCE_LAYERS, TABLE_COLUMNS, measure_layers, parse_layer
from onebit.runtime.provenance import cpu_model, git_commit


def _split(value: str, allowed=None, what="value") -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if allowed is not None:
        for v in items:
            if v not in allowed:
                raise click.BadParameter(f"{what} {v!r} is not one of {', '.join(allowed)}")
    return items


@click.command()
@click.argument("model", required=False)
@click.option("--layer", "layers", multiple=True, metavar="HxWxCin-Cout[,k=K,s=S]",
              help="Binary conv layer to time (repeatable); 'reference' = the four reference layers.")
@click.option("--isa", "isas", default=None, help="Comma list of ISAs (default: every ISA this CPU has).")
@click.option("--threads", default="1,2", show_default=True, help="Comma list of thread counts.")
@click.option("--pipeline", "pipelines", default=",".join(PIPELINES), show_default=True,
              help="Comma list of pipelines: " + ", ".join(PIPELINES) + ".")
@click.option("--repeats", type=click.IntRange(min=1), default=100, show_default=True, help="Timed runs.")
@click.option("--unprepared", is_flag=True,
              help="Re-lay out the packed weights inside every call (default: prepared once, as a model).")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch size of a MODEL benchmark.")
@click.option("--vs", default=None, metavar="lce,int8,float",
              help="Peers to time beside a MODEL in the same run (default: all when .peers-venv exists; "
                   "'none' for onebit only).")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A second model file (e.g. the unpruned model) timed interleaved with MODEL in the same "
                   "run; the table and records give MODEL/BASELINE time ratios.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the records as a JSON list to this file.")
def command(model, layers, isas, threads, pipelines, repeats, unprepared, batch, vs, baseline, json_path):
    """Time binary conv layers (--layer) or a model file (MODEL) on the onebit engine."""
    from onebit.runtime.engine import engine
    from onebit.table import format_table

    supported = list(engine.supported_isas())
    isa_list = _split(isas, ("scalar", "avx2", "avxvnni", "avx512", "neon"), "ISA") if isas else supported
    for isa in isa_list:
        if isa not in supported:
            raise click.BadParameter(f"ISA {isa!r} is not supported by this CPU (supported: {', '.join(supported)})",
                                     param_hint="--isa")
    try:
        thread_list = [int(t) for t in _split(threads)]
    except ValueError as e:
        raise click.BadParameter(f"threads must be integers: {e}", param_hint="--threads") from e
    if not thread_list or min(thread_list) < 1:
        raise click.BadParameter("threads must be >= 1", param_hint="--threads")
    if model is not None:
        if layers:
            raise click.UsageError("give either MODEL or --layer, not both")
        from onebit.bench.model import VS_ENGINES, bench_model

        peers = None if vs is None else (() if vs == "none" else tuple(_split(vs, tuple(VS_ENGINES), "peer")))
        try:
            records = bench_model(model, isas=isa_list, threads=thread_list, repeats=repeats, batch=batch,
                                  vs=peers, baseline=baseline)
        except (OSError, ValueError) as e:
            raise click.ClickException(str(e)) from e
    else:
        if batch != 1 or vs is not None or baseline is not None:
            raise click.UsageError("--batch, --vs and --baseline apply to a MODEL benchmark, not to --layer")
        if not layers:
            raise click.UsageError("give MODEL or at least one --layer HxWxCin-Cout[,k=K,s=S]")
        specs = []
        for text in layers:
            try:
                specs.extend(parse_layer(t) for t in (REFERENCE_LAYERS if text == "reference" else [text]))
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="--layer") from e
        pipe_list = _split(pipelines, PIPELINES, "pipeline")
        commit, cpu = git_commit(), cpu_model()
        click.echo(f"cpu: {cpu}   commit: {commit}   supported ISAs: {', '.join(supported)}", err=True)
        records = measure_layers(specs, isa_list, thread_list, pipe_list, repeats=repeats,
                                 warmup=max(2, repeats // 10), prepared=(not unprepared,), commit=commit, cpu=cpu)
    click.echo(format_table(records, [c for c in TABLE_COLUMNS if any(c in r for r in records)]))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(records, indent=1) + "\n")
        click.echo(f"wrote {len(records)} records to {json_path}", err=True)
