"""``onebit eval model.onebit --dataset NAME``: accuracy through the engine."""
from __future__ import annotations

import json as _json

import click

from onebit.cli.extras import require


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--dataset", required=True, help="mnist, fashion-mnist, cifar10, imagenette.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["test", "train"]))
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N images only.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Engine threads (default: all cores).")
@click.option("--isa", default=None, help="Force an ISA (scalar, avx2, avx512); default: the best available.")
@click.option("--simulate", is_flag=True, help="Also run the integer simulation (PyTorch) and report "
              "its accuracy and the argmax agreement with the engine.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write model, dataset, split, n, accuracy, isa (and the simulation figures).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(model, dataset, split, limit, batch_size, threads, isa, simulate, json_path, quiet):
    """Top-1 accuracy of MODEL (a .onebit file) on a dataset, computed by the engine."""
    import numpy as np
    from tqdm import tqdm

    if simulate:
        require("torch", "eval --simulate")

    from onebit.data import load
    from onebit.errors import OnebitError
    from onebit.runtime import Session

    try:
        sess = Session(model, threads=threads, isa=isa)
        size = sess.input_shape[0] if dataset == "imagenette" else None
        images, labels = load(dataset, split=split, size=size) if size else load(dataset, split=split)
    except (OnebitError, ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    if limit:
        images, labels = images[:limit], labels[:limit]
    if tuple(images.shape[1:]) != sess.input_shape:
        raise click.ClickException(f"{dataset} images are {images.shape[1:]}, the model expects "
                                   f"{sess.input_shape} (NHWC)")
    with tqdm(total=len(images), desc="eval", unit="img", disable=quiet) as bar:
        pred = sess.predict(images, batch_size, progress=bar.update)
    acc = float((pred == labels).mean())
    rec = {"model": model, "dataset": dataset, "split": split, "n": int(len(labels)), "accuracy": acc,
           "isa": sess.isa, "threads": sess.threads}
    click.echo(f"{model}: {dataset} {split} accuracy {acc * 100:.2f}% on {len(labels)} images "
               f"(engine, isa {sess.isa}, {sess.threads} threads)")
    if simulate:
        import torch

        from onebit.convert import simulate as _simulate

        sim = _simulate(sess.model)
        sp = np.concatenate([sim(torch.from_numpy(np.array(images[i:i + batch_size]))).argmax(1).numpy()
                             for i in range(0, len(images), batch_size)])
        rec["simulation_accuracy"] = float((sp == labels).mean())
        rec["argmax_agreement"] = float((sp == pred).mean())
        click.echo(f"integer simulation: accuracy {rec['simulation_accuracy'] * 100:.2f}%, argmax "
                   f"agreement with the engine {rec['argmax_agreement'] * 100:.2f}%")
    if json_path:
        with open(json_path, "w") as f:
            _json.dump(rec, f, indent=1)
