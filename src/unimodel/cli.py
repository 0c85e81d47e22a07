"""The ``unimodel`` command: train, sample, evaluate, render figures.

    unimodel train vae --latent-dim 16 --epochs 200 --seed 0 --out runs/vae
    unimodel train vae --out runs/vae --resume --epochs 400
    unimodel train vae --data ~/mnist --out runs/vae-mnist   # MNIST-style IDX files
    unimodel train gan --dataset ring --pack 4 --out runs/pacgan-ring
    unimodel sample runs/vae --n 64 --out samples.png
    unimodel sample runs/pacgan-ring --n 2500 --out points.npy
    unimodel eval runs/vae
    unimodel train unified --out runs/unified
    unimodel sample runs/unified --prompt 七 --n 1 --out seven.png
    unimodel caption runs/unified seven.png
    unimodel train vit --patch 2 --out runs/vit
    unimodel figures --list
    unimodel figures --json --notebooks docs/*.ipynb
    unimodel bench build [--with-tests]
    unimodel bench gan2d --dataset ring --seeds 0 1 2 3 4
    unimodel bench taxonomy [--epochs 200]

Every flag of ``train`` comes from a field of the model's config or of
``TrainConfig``, with the field's comment as its help. Bad input ends with a
one-line error and exit status 2; an existing checkpoint is never replaced
unless ``--resume`` continues it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import MISSING, asdict, fields, is_dataclass
from pathlib import Path

from unimodel.checkpoint import CheckpointError, atomic_write, load_checkpoint
from unimodel.limits import MAX_IMPORTANCE_SAMPLES, MAX_SAMPLES, check_count, check_seed
from unimodel.recipes import MODELS, model_spec

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _field_comments(cls: type) -> dict[str, str]:
    """The ``# comment`` after each field of a dataclass and of the dataclasses it extends, for --help."""
    pattern = re.compile(r"^\s+(\w+):[^#]*#\s*(.+)$")
    comments: dict[str, str] = {}
    for klass in reversed([k for k in cls.__mro__ if is_dataclass(k)]):  # a subclass's comment wins
        comments |= {m.group(1): m.group(2) for line in inspect.getsource(klass).splitlines() if (m := pattern.match(line))}
    return comments


def _boolean(text: str) -> bool:
    """A yes/no flag value: true/false, yes/no, 1/0 (bool("false") would be True)."""
    answers = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if text.lower() not in answers:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return answers[text.lower()]


def _finite_float(text: str) -> float:
    """A number flag's value: nan and inf parse as floats but mean nothing as a rate, a weight or a scale."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        return check_seed(int(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error) if text.lstrip("-").isdigit() else f"expected an integer, got {text!r}") from None


def _add_config_flags(parser: argparse.ArgumentParser, cls: type, group: str) -> None:
    section = parser.add_argument_group(group)
    comments = _field_comments(cls)
    for f in fields(cls):
        default = f.default if f.default is not MISSING else None
        kind = type(default) if default is not None else str
        section.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f"{group}:{f.name}",
            type={bool: _boolean, float: _finite_float}.get(kind, kind),
            default=None,
            metavar=kind.__name__.upper(),
            help=f"{comments.get(f.name, '')} (default: {default})",
        )


def _given(args: argparse.Namespace, group: str) -> dict:
    prefix = f"{group}:"
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix) and v is not None}


def _finite_or_none(value):
    """``value`` with every float that is not finite replaced by None: NaN and Infinity are not JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _print_json(value) -> None:
    print(json.dumps(_finite_or_none(value), ensure_ascii=False, allow_nan=False))


def _writable_folder(folder: Path) -> None:
    """Refuse a folder this process cannot write into; the folders made to find out are removed again."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise UsageError(f"cannot write to {folder}: {error.strerror or error}") from None
    finally:
        for made in missing:
            if made.is_dir() and not any(made.iterdir()):
                made.rmdir()


def _output_file(out: Path, suffixes: tuple[str, ...]) -> None:
    if out.suffix not in suffixes:
        raise UsageError(f"--out must end in {' or '.join(suffixes)}, got {out.name}")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; name a file in it")
    _writable_folder(out.parent)


def _train(args: argparse.Namespace) -> None:
    from unimodel.data import DATASETS, load_splits
    from unimodel.runs import CHECKPOINT, train_run
    from unimodel.training import TrainConfig

    spec = model_spec(args.model)
    out = Path(args.out)
    checkpoint = out / CHECKPOINT
    model_config = _given(args, "model")
    if checkpoint.exists():
        if not args.resume:
            raise UsageError(f"{checkpoint} exists; pass --resume to continue it or choose another --out")
        saved = load_checkpoint(checkpoint)
        if saved["meta"].get("model") != args.model:
            raise UsageError(f"{checkpoint} holds a {saved['meta'].get('model')!r} model, not {args.model!r}")
        conflicts = {k for k, v in model_config.items() if saved["meta"]["config"].get(k) != v}
        if conflicts:
            raise UsageError(f"--resume keeps the saved model settings; drop {', '.join(sorted(conflicts))}")
        model_config = saved["meta"]["config"]
    elif args.resume:
        print(f"unimodel: no checkpoint in {out} to resume: training from scratch", file=sys.stderr)
    data = args.data or "digits"
    if data not in DATASETS:
        data = str(Path(data).expanduser().resolve())  # the checkpoint must find it from anywhere
    if checkpoint.exists():
        saved_data = saved["meta"].get("data", "digits")
        if args.data is not None and data != saved_data:
            raise UsageError(f"--resume keeps the saved data ({saved_data}); drop --data")
        data = saved_data
        train_config = TrainConfig(**{**saved["train_config"], **_given(args, "training")})
        if train_config.optimizer != saved["train_config"]["optimizer"]:  # its saved state would not fit
            raise UsageError(f"--resume keeps the optimizer {saved['train_config']['optimizer']!r}; drop --optimizer")
        _say_what_resuming_does(checkpoint, saved, train_config)
    else:
        train_config = TrainConfig(**{**spec.train_defaults(data), **_given(args, "training")})
    splits = load_splits(data)
    if "data_dim" in {f.name for f in fields(spec.config_cls)}:
        model_config.setdefault("data_dim", splits.train.x.shape[1])  # pixels per image of this data
    config = spec.config_cls(**model_config)  # validates the values before any work
    _writable_folder(out)
    run = train_run(args.model, asdict(config), train_config, out, data=data, resume=args.resume, splits=splits)
    r = run.result
    # a model without validation (a GAN) has no best_val: null, as any number that is not finite
    _print_json({"out": str(out), "epochs": len(r.history), "best_epoch": r.best_epoch, "best_val": r.best_val, "seconds": round(r.seconds, 1)})
    from torch import distributed as dist

    if dist.is_initialized():  # under torchrun: gloo's threads left running at exit can abort the process (pytorch/pytorch#190489)
        dist.destroy_process_group()
        # Even after it, about one exit in 30 on a busy machine still aborts while the interpreter shuts down
        # ("terminate called without an active exception"), after the run is saved and reported.
        # The work is done: leave at once, without the interpreter's teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _say_what_resuming_does(checkpoint: Path, saved: dict, train_config) -> None:
    """Refuse a resume that would train nothing; else say where it starts and which settings change from here on."""
    loop, before = saved["loop"], saved["train_config"]
    done = loop["epoch"]
    if train_config.epochs <= done:
        raise UsageError(f"{checkpoint} has trained {done} epochs already: --epochs {train_config.epochs} leaves none to train; give more than {done}")
    if train_config.patience and loop["bad_epochs"] >= train_config.patience:
        raise UsageError(
            f"{checkpoint} stopped early after epoch {done} ({loop['bad_epochs']} epochs without a better validation score); "
            f"give --patience above {loop['bad_epochs']}, or 0, to train on"
        )
    changed = [f"{name} {before.get(name)} -> {value}" for name, value in asdict(train_config).items() if before.get(name) != value]
    print(
        f"unimodel: resuming {checkpoint} at epoch {done + 1} of {train_config.epochs}"
        + (f"; from here on {', '.join(changed)} (recorded in the checkpoint)" if changed else ", with its settings"),
        file=sys.stderr,
    )


def _sample(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from unimodel.runs import load_run

    check_count(args.n, "--n", MAX_SAMPLES)
    out = Path(args.out)
    _output_file(out, (".png", ".npy"))
    if args.prompt is None and args.guidance is not None:
        raise UsageError("--guidance scales a --prompt; give one")
    if args.guidance is not None and args.guidance < 0:
        raise UsageError(f"--guidance must be >= 0, got {args.guidance}")
    run = load_run(args.run)
    if run.spec.sample is None:
        raise UsageError(f"{args.run} holds a {run.name!r} model, which draws no samples (try 'unimodel eval {args.run}')")
    generator = torch.Generator().manual_seed(args.seed)
    if args.prompt is not None:
        if run.spec.draw is None:
            raise UsageError(f"{args.run} holds a {run.name!r} model, which takes no prompt; drop --prompt")
        images = run.spec.draw(run.model, [args.prompt] * args.n, args.guidance, generator).cpu().numpy()  # (n, 64)
    else:
        images = run.spec.sample(run.model, args.n, generator).cpu().numpy()  # (n, 64) or (n, 2)
    if out.suffix == ".npy":

        def write_npy(tmp: str) -> None:
            with open(tmp, "wb") as f:  # a file, not a name: np.save would append .npy to the temporary name
                np.save(f, images)

        atomic_write(out, write_npy)
    elif images.shape[1] == 2:
        from unimodel.figures.style import save_point_cloud

        save_point_cloud(images, out)
    elif args.n == 1:  # one digit, filling the picture: what 'unimodel caption' reads back
        from unimodel.data import write_digit_png

        write_digit_png(images[0], out)
    else:
        from unimodel.figures.style import save_image_grid

        save_image_grid(images, out)
    _print_json({"out": str(out), "n": args.n, "shape": list(images.shape)})


def _caption(args: argparse.Namespace) -> None:
    from unimodel.data import read_digit_png
    from unimodel.runs import load_run

    x = read_digit_png(args.image)[None]  # (1, 64); a picture that cannot be read is refused before the run is loaded
    run = load_run(args.run)
    if run.spec.caption is None:
        captioners = ", ".join(name for name in sorted(MODELS) if model_spec(name).caption is not None)
        raise UsageError(f"{args.run} holds a {run.name!r} model, which writes no captions (models that do: {captioners})")
    langs = [args.lang] if args.lang else ["zh", "en"]
    _print_json({"image": args.image, **{lang: run.spec.caption(run.model, x, lang)[0] for lang in langs}})


def _eval(args: argparse.Namespace) -> None:
    from unimodel.data import load_splits
    from unimodel.runs import load_run

    check_count(args.k, "--k", MAX_IMPORTANCE_SAMPLES)
    run = load_run(args.run)
    metrics = run.spec.evaluate(run.model, load_splits(run.data), k=args.k, seed=args.seed)
    metrics.update(model=run.name, best_epoch=run.result.best_epoch, train_seconds=round(run.result.seconds, 1))
    _print_json(metrics)


def _figures(args: argparse.Namespace) -> None:
    import logging

    from unimodel.figures import registry

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    registry.load_chapters()
    if args.list:
        for name in sorted(registry.FIGURES):
            print(name)
        return
    from unimodel.cache import writable_cache_dir

    writable_cache_dir()
    if args.json:
        notebooks = [Path(p) for p in args.notebooks]
        missing = [p for p in notebooks if not p.is_file()]
        if missing:
            raise UsageError(f"no notebook at {missing[0]}")
        from unimodel.website import build

        jobs = _jobs(args)
        try:
            manifest = build.build(notebooks, jobs=jobs, scheduler=args.scheduler or os.environ.get("UNIMODEL_SCHEDULER") or None)
        except build.BuildError as error:
            print(f"unimodel figures: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        _print_json(manifest)
        return
    names = args.names or sorted(registry.FIGURES)
    unknown = [n for n in names if n not in registry.FIGURES]
    if unknown:
        raise UsageError(f"unknown figure {unknown[0]!r}; see 'unimodel figures --list'")
    for name in names:
        for lang in registry.LANGUAGES:
            print(registry.render_figure(name, lang))


def _jobs(args: argparse.Namespace) -> int:
    """The workers ``--jobs`` asks for, else the build's default ($UNIMODEL_JOBS, else the cores)."""
    from unimodel.website.build import BuildError, default_jobs

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be positive, got {args.jobs}")
    try:
        return args.jobs or default_jobs()
    except BuildError as error:  # a bad $UNIMODEL_JOBS
        raise UsageError(str(error)) from None


def _bench(args: argparse.Namespace) -> None:
    from unimodel.website import bench

    if args.page_loads < 1:
        raise UsageError(f"--page-loads must be positive, got {args.page_loads}")
    jobs = _jobs(args)
    try:
        bench.main(profile=args.profile, jobs=jobs, with_tests=args.with_tests, page_loads=args.page_loads, keep=args.keep)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"unimodel: bench failed: {error}", file=sys.stderr)
        raise SystemExit(1) from None


def _bench_gan2d(args: argparse.Namespace) -> None:
    from unimodel.experiments import gan2d

    if len(set(args.seeds)) < len(args.seeds):
        raise UsageError(f"--seeds repeats a seed: {' '.join(map(str, args.seeds))}")
    out = Path(args.out) if args.out else None
    if out is not None:
        _writable_folder(out)
        _no_checkpoints(gan2d.run_folder(out, args.dataset, args.variant, seed) for seed in args.seeds)
    gan2d.main(args.dataset, args.variant, args.seeds, out)


def _no_checkpoints(folders) -> None:
    """Refuse, before any training, to write a checkpoint where one is (a bench command trains from scratch)."""
    from unimodel.runs import CHECKPOINT

    taken = [folder / CHECKPOINT for folder in folders if (folder / CHECKPOINT).exists()]
    if taken:
        raise UsageError(f"{taken[0]} exists" + (f" (and {len(taken) - 1} more)" if len(taken) > 1 else "") + "; choose another --out")


def _bench_taxonomy(args: argparse.Namespace) -> None:
    from unimodel.experiments import taxonomy

    budget = taxonomy.Budget(**_given(args, "budget"))  # validates the values before any work
    out = Path(args.out) if args.out else None
    if out is not None:
        _writable_folder(out)
        _no_checkpoints(taxonomy.run_folders(budget, out))
    taxonomy.main(budget, out)


def _cache_export(args: argparse.Namespace) -> None:
    from unimodel.website import publish

    out = Path(args.out)
    if not out.name.endswith(".tar.gz"):
        raise UsageError(f"the archive's name must end in .tar.gz, got {out.name}")
    _writable_folder(out.parent)
    try:
        _print_json(publish.export_cache(out, runs=not args.no_runs, notebooks=args.notebooks))
    except publish.ArchiveError as error:
        raise UsageError(str(error)) from None


def _cache_restore(args: argparse.Namespace) -> None:
    import logging

    from unimodel.website import publish

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        counts = publish.restore_cache(args.source, args.notebooks)
    except publish.ArchiveError as error:
        print(f"unimodel: nothing restored: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    note = (
        ""
        if counts["libraries_match"]
        else " (the archive was built with other versions of torch, numpy, scikit-learn or matplotlib: their entries have other keys)"
    )
    from unimodel.cache import cache_dir

    print(
        f"unimodel: restored {counts['restored']} files into {cache_dir()}, "
        f"{counts['present']} were there already, {counts['ignored']} ignored (made by other code or another profile){note}",
        file=sys.stderr,
    )


def _add_model_flags(train: argparse.ArgumentParser, name: str) -> None:
    """The flags of model ``name``'s config on ``train``, and its training defaults in the epilog."""
    spec = model_spec(name)
    _add_config_flags(train, spec.config_cls, "model")
    digits, points = spec.train_defaults("digits"), spec.train_defaults("ring")
    if digits or points:

        def shown(defaults: dict) -> str:
            return ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in defaults.items())

        per_data = f"on the digits {shown(digits)}" + (f"; on ring and grid {shown(points)}" if points != digits else "")
        train.epilog = f"{name} trains with its own defaults, which flags override: {per_data}"


def build_parser(train_model: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; with ``train_model``, ``train`` also takes that model's config flags (they exist once the model is named)."""
    parser = _Parser(prog="unimodel", description="Train, sample and evaluate the models of the unified-model notes.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train", help="train a generative model, a classifier or an image-text model on the 8x8 digits, a 2-D mixture or MNIST-style files"
    )
    train.add_argument("model", help=f"one of: {', '.join(sorted(MODELS))}")
    train.add_argument("--out", required=True, help="folder for checkpoint.pt (created if missing)")
    train.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    train.add_argument(
        "--data",
        "--dataset",
        default=None,
        metavar="digits|ring|grid|DIR",
        help="scikit-learn's 8x8 digits (default), the ring or grid of 2-D Gaussians, or a folder of MNIST-style IDX files (train-images-idx3-ubyte[.gz], ...)",
    )
    train.set_defaults(run_command=_train)
    from unimodel.training import TrainConfig

    _add_config_flags(train, TrainConfig, "training")
    if train_model:
        _add_model_flags(train, train_model)

    sample = commands.add_parser("sample", help="draw images from a trained model")
    sample.add_argument("run", help="folder holding checkpoint.pt")
    sample.add_argument("--n", type=int, default=64, help="number of images (default: 64)")
    sample.add_argument(
        "--out", required=True, help="a .png (a grid of images, or a scatter plot of 2-D points) or a .npy array: (n, 64) images in [0, 1] or (n, 2) points"
    )
    sample.add_argument("--seed", type=_seed, default=0, help="seed of the sampling noise (default: 0)")
    sample.add_argument(
        "--prompt",
        help="what to draw, for models that take a prompt (unified): a digit's name, e.g. 七 or seven; --n 1 writes the digit alone, as 'unimodel caption' reads it",
    )
    sample.add_argument(
        "--guidance",
        type=_finite_float,
        help="classifier-free guidance scale for --prompt: 0 ignores the prompt, 1 is the plain conditional model (default: the model's own)",
    )
    sample.set_defaults(run_command=_sample)

    captioner = commands.add_parser(
        "caption",
        help="describe a picture of one digit in words (unified, blip), as JSON",
        description="Describe a picture of one digit in words, as JSON. A unified model gives the caption that every direction it learned ranks highest "
        "(log p(caption | image) + log p(image | name)); BLIP writes its caption word by word.",
    )
    captioner.add_argument("run", help="folder holding checkpoint.pt")
    captioner.add_argument("image", help="a picture (PNG, JPEG, ...) of one digit that fills it; any size, dark ink on light paper or the reverse")
    captioner.add_argument("--lang", choices=["zh", "en"], help="the caption's language (default: both)")
    captioner.set_defaults(run_command=_caption)

    evaluate = commands.add_parser("eval", help="test-set metrics of a trained model, as JSON (NLL, sample scores or accuracy)")
    evaluate.add_argument("run", help="folder holding checkpoint.pt")
    evaluate.add_argument("--k", type=int, default=5000, help="importance samples for the NLL estimate (default: 5000)")
    evaluate.add_argument("--seed", type=_seed, default=0, help="seed of the estimator's noise (default: 0)")
    evaluate.set_defaults(run_command=_eval)

    figures = commands.add_parser("figures", help="render the site's figures into the cache")
    figures.add_argument("names", nargs="*", help="figures to render (default: all)")
    figures.add_argument("--list", action="store_true", help="list the registered figures")
    figures.add_argument(
        "--json",
        action="store_true",
        help="render every figure and result, export the models the pages run, execute --notebooks, print where they are as JSON (what the site build uses)",
    )
    figures.add_argument("--notebooks", nargs="*", default=[], metavar="IPYNB", help="notebooks to execute, with --json")
    figures.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="with --json: tasks computed at once, in N worker processes of one thread (default: $UNIMODEL_JOBS, else the cores; 1: one after the other in this process)",
    )
    figures.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="with --json: run the tasks on this Dask cluster, e.g. tcp://host:8786 (default: $UNIMODEL_SCHEDULER); every worker runs this code and sees the cache at the same path",
    )
    figures.set_defaults(run_command=_figures)

    cache_command = commands.add_parser("cache", help="pack the built cache to publish it, or restore a published one before a build")
    cache_actions = cache_command.add_subparsers(dest="action", required=True, parser_class=_Parser, metavar="{export,restore}")
    export = cache_actions.add_parser(
        "export",
        help="pack the figures, results, exported models, notebooks, timings and (unless --no-runs) the trained runs into a .tar.gz",
        description="Packs what $UNIMODEL_CACHE (default .cache) holds for this code and $UNIMODEL_PROFILE into one archive, each file listed with its SHA-256 (entries of older code stay out); "
        "runs keep their best weights and history, without the optimizer state that only resuming needs.",
    )
    export.add_argument("out", metavar="ARCHIVE.tar.gz", help="where to write the archive")
    export.add_argument("--no-runs", action="store_true", help="leave the trained runs out (a restored cache then retrains a model when its figures change)")
    export.add_argument("--notebooks", nargs="*", default=[], metavar="IPYNB", help="the site's notebooks, whose executed copies to pack too")
    export.set_defaults(run_command=_cache_export)
    restore = cache_actions.add_parser(
        "restore",
        help="add to the cache the entries of a published archive (a file or an http(s) URL) that this code would compute",
        description="Keeps only the entries whose keys the code at hand, under $UNIMODEL_PROFILE, would ask for; checks each "
        "against the archive's SHA-256 list and its kind (checkpoints load with weights_only=True); never overwrites.",
    )
    restore.add_argument("source", metavar="ARCHIVE", help="a .tar.gz made by 'unimodel cache export', as a path or an http(s) URL")
    restore.add_argument("--notebooks", nargs="*", default=[], metavar="IPYNB", help="the site's notebooks, whose executed copies to restore too")
    restore.set_defaults(run_command=_cache_restore)

    bench = commands.add_parser("bench", help="measure the site build, run the GAN chapter's 2-D mode-collapse benchmark, or the taxonomy chapter's table")
    targets = bench.add_subparsers(dest="target", required=True, parser_class=_Parser, metavar="{build,gan2d,taxonomy}")
    build = targets.add_parser(
        "build",
        help="time the site build and weigh the VAE chapter; JSON on stdout, a summary on stderr",
        description="Runs on a copy of the repository with its own caches and site folders: a clean build with the tasks "
        "one after the other and one with --jobs workers (the speed-up as their ratio), each split over its tasks; "
        "a second build; rebuilds after touching docs/vae.md, after a comment in src/unimodel/training.py (nothing "
        "may be recomputed) and after editing src/unimodel/models/vae.py; optionally the tests; the VAE chapter in "
        "headless Chromium. The full profile takes the time of two clean full builds.",
    )
    build.add_argument("--profile", choices=["full", "quick"], default="full", help="the budgets of the builds timed (default: full, what make site builds)")
    build.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="workers of the parallel clean build (default: $UNIMODEL_JOBS, else the cores; 1: the serial build only)",
    )
    build.add_argument("--with-tests", action="store_true", help="also time the whole test suite from an empty cache (several minutes)")
    build.add_argument("--page-loads", type=int, default=3, metavar="N", help="loads of the VAE chapter to take the median of (default: 3)")
    build.add_argument("--keep", metavar="DIR", help="work in DIR and leave it there (default: a temporary folder, removed)")
    build.set_defaults(run_command=_bench)
    gan2d = targets.add_parser(
        "gan2d",
        help="PacGAN's mode-collapse benchmark: train and score one GAN per seed; one JSON line per seed, then the summary",
        description="Trains a GAN from scratch for each seed on a 2-D mixture (ring: 8 Gaussians of std 0.01 on the unit circle; "
        "grid: 25 of std 0.05 on {-4,-2,0,2,4}^2), draws 2500 points and scores them as PacGAN does: modes captured, "
        "share of high-quality points (within 3 std of a mode), JSD of the mode histogram to uniform, training seconds.",
    )
    gan2d.add_argument("--dataset", choices=["ring", "grid"], default="ring", help="the mixture (default: ring)")
    gan2d.add_argument(
        "--variant",
        choices=["r1", "gan", "pacgan"],
        default="r1",
        help="r1: the chapter's recommendation, a GAN with the R1 penalty and rejection sampling (scored with and without it); gan: the plain GAN; pacgan: packs of 4 (default: r1)",
    )
    gan2d.add_argument("--seeds", type=_seed, nargs="+", default=[0, 1, 2, 3, 4], metavar="SEED", help="seeds to train (default: 0 1 2 3 4)")
    gan2d.add_argument("--out", metavar="DIR", help="keep each seed's checkpoint in DIR/<dataset>-<variant>-seed<N> (default: not kept)")
    gan2d.set_defaults(run_command=_bench_gan2d)
    tax = targets.add_parser(
        "taxonomy",
        help="train PixelCNN, VAE, GAN and DDPM on the digits with the same budget and print the taxonomy chapter's table as JSON",
        description="Trains each model from scratch on the 1000 training digits for --epochs passes (the DDPM also for --long-epochs), "
        "then measures: the test NLL (exact, a bound, or none), the sampling time per image, how a judge trained on real digits "
        "reads --samples samples, k-NN precision and recall against the test digits, and the training time. "
        "The table goes to stdout as JSON, progress and a readable table to stderr. The full budget takes about 5 minutes on 2 CPU cores.",
    )
    from unimodel.experiments.taxonomy import Budget

    _add_config_flags(tax, Budget, "budget")
    tax.add_argument(
        "--out",
        metavar="DIR",
        help="keep each row's checkpoint in DIR/<row>-<epochs>epochs, the rows pixelcnn, vae, gan, diffusion and diffusion-long (default: not kept)",
    )
    tax.set_defaults(run_command=_bench_taxonomy)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        named = argv[1] if len(argv) >= 2 and argv[0] == "train" and not argv[1].startswith("-") else None
        args = build_parser(named).parse_args(argv)
        args.run_command(args)
    except (UsageError, CheckpointError, ValueError) as error:
        print(f"unimodel: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # a path the system refuses: a folder in the way, a name too long, no permission, a full disk
        where = f"{error.filename}: " if error.filename else ""
        print(f"unimodel: error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("unimodel: error: out of memory; ask for fewer samples, steps or a smaller model", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as error:
        if "can't allocate memory" not in str(error):  # PyTorch's allocator: the same as a MemoryError
            raise
        print(f"unimodel: error: out of memory ({str(error).splitlines()[0]}); ask for fewer samples, steps or a smaller model", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("unimodel: interrupted; the last checkpoint written is intact", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
