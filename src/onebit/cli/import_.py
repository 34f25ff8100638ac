"""``onebit import MODEL.h5 -o MODEL.onebit``: a Keras 2 / Larq model into one engine file."""
from __future__ import annotations

import click

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _floats(ctx, param, value):
    if value is None:
        return None
    try:
        v = tuple(float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: comma-separated numbers expected") from None
    if param.name == "std" and any(x <= 0 for x in v):
        raise click.BadParameter("std entries must be > 0")
    return v


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="The .onebit file to write (needs every layer to be exportable).")
@click.option("--pt", "pt_path", type=click.Path(dir_okay=False), default=None,
              help="Also save the imported torch module (torch.save of the whole module).")
@click.option("--larq-zoo", "larq_zoo", default=None,
              help="Larq Zoo architecture of a weights-only file (model.save_weights), e.g. QuickNetSmall.")
@click.option("--match", type=click.Choice(["name", "order"]), default="name", show_default=True,
              help="How --larq-zoo pairs the file's weights with the architecture's layers.")
@click.option("--identity-lambda", "identity_lambdas", multiple=True, metavar="NAME",
              help="A Lambda layer (name or fnmatch pattern, repeatable) that returns its input; other "
                   "Lambda layers are refused (their Python code is never run), except Larq Zoo's split/concat "
                   "and MeliusNet merge lambdas, read from their stored data.")
@click.option("--mean", callback=_floats, default=None,
              help="Per-channel mean of the input normalization x = (u/255 - mean)/std "
                   "[default: ImageNet's, as Larq Zoo's preprocess_input].")
@click.option("--std", callback=_floats, default=None, help="Per-channel std (see --mean).")
@click.option("--float-boundary", is_flag=True,
              help="Run the first convolution in float32 on the normalized image (not int8), so that the "
                   "engine follows Keras' float forward to float32 rounding up to the first sign.")
def command(model, output, pt_path, larq_zoo, match, identity_lambdas, mean, std, float_boundary):
    """Import MODEL (a Keras 2 / Larq .h5 file) and export it to the .onebit format.

    The model is rebuilt from onebit.nn layers without TensorFlow. Layers that the .onebit
    format cannot represent are listed by their Keras name with the reason, and nothing is
    written (--pt still saves the torch module). A final softmax is dropped: the engine
    returns logits (same top-1).
    """
    import torch

    from onebit.convert import ConversionError, export
    from onebit.convert.larq import LarqImportError, from_larq
    from onebit.convert.larq.check import fold_input_scaling, strip_softmax, unsupported

    if output is None and pt_path is None:
        raise click.UsageError("nothing to write: give -o MODEL.onebit and/or --pt MODEL.pt")
    try:
        m = from_larq(model, larq_zoo=larq_zoo, match=match, identity_lambdas=identity_lambdas)
    except LarqImportError as e:
        raise click.ClickException(str(e)) from e
    n = sum(p.numel() for p in m.parameters())
    click.echo(f"imported {model}: {len(m.nodes)} layers, {n} parameters, input {list(m.keras_input_shape)} (HWC)")
    if pt_path:
        torch.save(m, pt_path)
        click.echo(f"wrote {pt_path} (torch module, NCHW input)")
    if output is None:
        return
    if strip_softmax(m):
        click.echo("note: the final softmax is not exported (the engine outputs logits; the top-1 is unchanged)")
    shape = list(m.keras_input_shape)
    folded = fold_input_scaling(m, shape[-1]) if mean is None and std is None and len(shape) == 3 else None
    if folded is not None:
        mean, std, names = folded
        click.echo(f"note: input scaling {', '.join(names)} becomes the file's input normalization "
                   f"(the engine reads pixels 0..255)")
    problems = unsupported(m)
    if problems:
        lines = "\n".join(f"  layer {name!r}: {why}" for name, why in problems)
        raise click.ClickException(f"cannot export {model} to .onebit; {len(problems)} layer(s) have no "
                                   f".onebit equivalent:\n{lines}")
    if len(shape) != 3:
        raise click.ClickException(f"input of shape {shape}: the .onebit input is an image (H, W, C)")
    c = shape[2]
    mean = mean or (IMAGENET_MEAN if c == 3 else (0.0,) * c)
    std = std or (IMAGENET_STD if c == 3 else (1.0,) * c)
    if len(mean) != c or len(std) != c:
        raise click.ClickException(f"--mean/--std need {c} values (one per input channel)")
    out_dim = None
    with torch.no_grad():
        out_dim = int(m(torch.zeros(1, c, shape[0], shape[1])).shape[-1])
    spec = {"shape": shape, "mean": list(mean), "std": list(std), "dataset": None,
            "num_classes": out_dim, "class_names": None}
    try:
        export(m, output, input_spec=spec, float_boundary=float_boundary)
    except (ConversionError, ValueError) as e:
        raise click.ClickException(f"cannot export {model} to .onebit: {e}") from e
    click.echo(f"wrote {output}")
