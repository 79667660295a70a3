"""`scae-hash` command line: baseline, train and evaluate, all on the one evaluation road."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, NoReturn

from scae_hash.checks import image_side, integer_option, one_line
from scae_hash.errors import ScaeHashError
from scae_hash.constants import MAX_BITS, MIN_BITS, SPLITS

if TYPE_CHECKING:
    from scae_hash.experiment import RunSettings

TABLE_COLUMNS = ["method", "dataset", "bits", "seed", "map", "map_at_1000", "map_tie_aware",
                 "precision_at_1000", "p_r2", "bit_rate_min", "bit_rate_max", "fit_seconds"]
JSON_KEYS_ORDER = ["method", "dataset", "bits", "seed", "map", "map_at_1000", "map_tie_aware",
                   "precision_at_1000", "p_r2"]


bits_value = integer_option("bits", MIN_BITS, MAX_BITS)
positive_int = integer_option("the value", 1)
port_value = integer_option("port", 0, 65535)


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad arguments end in one clear line (argparse would print the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from scae_hash.constants import DATASETS
    from scae_hash.hashers import BASELINES

    parser = OneLineErrorParser(
        prog="scae-hash",
        description="Unsupervised image hashing with stacked convolutional autoencoders, "
        "shallow baselines, and the docs/protocol.md evaluation.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_run_options(sub: argparse.ArgumentParser, default_bits: list[int], bits_help: str = "%(default)s") -> None:
        sub.add_argument("--bits", type=bits_value, nargs="+", default=default_bits,
                         help=f"code lengths ({MIN_BITS}..{MAX_BITS}; default: {bits_help})")
        sub.add_argument("--seed", type=int, help="training seed (default: the config's 'seed' for train, else 0)")
        sub.add_argument("--split-seed", type=int, default=0,
                         help="seed of the protocol's query/database split (default: 0, the reported one)")
        sub.add_argument("--split", choices=SPLITS, default="test",
                         help="score the protocol's test queries, or the validation queries drawn from the "
                         "training set (for choosing configs; rows go to results/validation.csv) (default: %(default)s)")
        sub.add_argument("--data-dir", help="folder holding mnist/, cifar10/, fashion-mnist/ "
                         "(default: $SCAE_HASH_DATA, then the Debian path, then a keras.datasets download)")
        sub.add_argument("--codes-out", metavar="FILE.h5",
                         help="write the docs/protocol.md codes file; with several runs, "
                         "'{method}', '{dataset}', '{bits}', '{seed}' in the name are filled in "
                         "(else a suffix is added)")
        sub.add_argument("--results-dir", default="results", help="where result rows go (default: %(default)s)")
        sub.add_argument("--no-save", action="store_true", help="do not append rows to the results CSV")
        sub.add_argument("--json", action="store_true", help="print one JSON object per result row on stdout")
        sub.add_argument("--quiet", action="store_true", help="no progress bars")

    baseline = commands.add_parser("baseline", help="fit and evaluate a baseline (LSH, PCAH, ITQ, SH, IMH)",
                                   description="Fit a baseline on raw pixels (IMH: manifold hashing on a UMAP layout, docs/manifold.md) and evaluate it under docs/protocol.md.")
    baseline.add_argument("--method", nargs="+", required=True, choices=sorted(BASELINES), metavar="METHOD",
                          help=f"one or more of: {', '.join(BASELINES)}")
    baseline.add_argument("--dataset", nargs="+", required=True, metavar="DATASET",
                          help=f"one or more of: {', '.join(DATASETS)}, or the path of your own image folder "
                          "or zip laid out as <split>/<class>/<image>")
    add_run_options(baseline, [16, 32, 48, 64])
    baseline.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                          help="a hyper-parameter of the method's constructor, e.g. --set n_components=10 for imh "
                          "(repeatable; for validation runs)")
    baseline.set_defaults(handler=HANDLERS["baseline"])

    train = commands.add_parser("train", help="pretrain and fine-tune the SCAE hasher from a YAML config",
                                description="Greedy layer-wise pretraining, then fine-tuning of the hash layer; "
                                "evaluates under docs/protocol.md like `baseline`.")
    train.add_argument("--config", required=True, help="YAML config, e.g. experiments/configs/mnist.yaml")
    add_run_options(train, [], bits_help="the config's bits")
    train.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                       help="override a config value, e.g. --set finetune.epochs=3 (repeatable)")
    train.add_argument("--subset", type=positive_int, help="train on N training images only (smoke runs)")
    train.add_argument("--run-dir", default="runs",
                       help="folder for models, histories, checkpoints and the pretraining cache (default: %(default)s)")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run from its last saved epoch")
    train.add_argument("--validate-each-epoch", action="store_true",
                       help="after every fine-tuning epoch, score the validation split (features, ITQ on them, "
                       "the head's codes) into the history CSV; never the test queries")
    train.set_defaults(handler=HANDLERS["train"])

    index = commands.add_parser("index", help="hash a folder of images into a searchable index file",
                                description="Encode every image under FOLDER (any depth, resized to the "
                                "hasher's input size) in batches and save codes, paths and the hasher in one "
                                "file. Unreadable files are skipped (listed in INDEX.skipped.txt); an "
                                "interrupted run resumes when the same command is run again.")
    index.add_argument("folder", metavar="FOLDER")
    source = index.add_mutually_exclusive_group()
    source.add_argument("--method", choices=sorted(BASELINES),
                        help="fit this baseline on a sample of the folder's images (see --fit-sample)")
    source.add_argument("--model", metavar="MODEL.keras", help="use a trained SCAE model (from `scae-hash train`)")
    index.add_argument("--bits", type=bits_value, default=64, help="code length of a baseline (default: %(default)s)")
    index.add_argument("--seed", type=int, default=0)
    index.add_argument("--size", type=image_side, nargs=2, default=[32, 32], metavar=("HEIGHT", "WIDTH"),
                       help="image size for a baseline (default: 32 32; a model uses its own)")
    index.add_argument("--grey", action="store_true", help="baseline on greyscale pixels instead of RGB")
    index.add_argument("--out", required=True, metavar="INDEX.h5")
    index.add_argument("--append", action="store_true",
                       help="add the images under FOLDER that INDEX.h5 does not hold yet, with its own hasher")
    index.add_argument("--strict", action="store_true", help="refuse the whole folder if any file is unreadable")
    index.add_argument("--fit-sample", type=positive_int, default=10_000, metavar="N",
                       help="fit a baseline on at most N randomly drawn images (default: %(default)s)")
    index.add_argument("--batch-size", type=positive_int, default=256, metavar="N",
                       help="images decoded and encoded at once; also the checkpoint step (default: %(default)s)")
    index.add_argument("--rerank-model", metavar="OTHER.keras",
                       help="also store a second SCAE model's features, for `search --rerank-model`")
    index.add_argument("--quiet", action="store_true", help="no progress bars")
    index.set_defaults(handler=HANDLERS["index"], json=False)

    search = commands.add_parser("search", help="find the images of an index nearest to query images",
                                 description="Hamming ranking by default; --radius for hash-bucket lookup; "
                                 "--rerank N for a Hamming shortlist of N re-ranked by continuous features.")
    search.add_argument("index_file", metavar="INDEX.h5")
    search.add_argument("queries", nargs="+", metavar="IMAGE")
    search.add_argument("-k", type=positive_int, default=10, help="results per query (default: %(default)s)")
    mode = search.add_mutually_exclusive_group()
    mode.add_argument("--radius", type=int, choices=range(0, 4), help="hash-bucket lookup within this radius")
    mode.add_argument("--rerank", type=positive_int, metavar="N", help="two-stage: re-rank an N-item shortlist")
    search.add_argument("--rerank-model", metavar="OTHER.keras",
                        help="re-rank the shortlist (--rerank N, default 100) by a second SCAE model's features "
                        "(the index must be built with `index --rerank-model` of the same file)")
    search.add_argument("--json", action="store_true", help="print one JSON object per query")
    search.add_argument("--timings", action="store_true",
                        help="print the time split (start-up, model load, decoding, encoding, search) on stderr; "
                        "always printed for an SCAE index")
    search.set_defaults(handler=HANDLERS["search"])

    serve = commands.add_parser("serve", help="search an index from a local web page (and a JSON API)",
                                description="Serve a page where you drop a query image and see the top k "
                                "images of INDEX.h5; JSON API at /api/search, /api/info and /image/ID.")
    serve.add_argument("index_file", metavar="INDEX.h5")
    serve.add_argument("--port", type=port_value, default=5000,
                       help="TCP port, 0 for any free one (default: %(default)s)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default: %(default)s, this machine only; 0.0.0.0 opens it to the network)")
    serve.set_defaults(handler=HANDLERS["serve"])

    evaluate = commands.add_parser("evaluate", help="score a codes file (docs/protocol.md layout)",
                                   description="Score any codes file with the docs/protocol.md metrics.")
    evaluate.add_argument("codes_file", metavar="FILE.h5")
    evaluate.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    evaluate.add_argument("--allow-overlap", action="store_true",
                          help="score a file whose query images are also in the database (refused by default)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bars")
    evaluate.set_defaults(handler=HANDLERS["evaluate"])

    reproduce = commands.add_parser(
        "reproduce", help="run every reported cell that is missing or stale, then rebuild tables, figures, docs",
        description="Read the plan of every reported cell (experiments/plan.yaml), run each missing or stale "
        "cell in its own process (resumable: a killed run continues where it stopped), then rebuild every "
        "table and figure and the result tables of README and docs/*.md from results/.")
    reproduce.add_argument("--plan", default="experiments/plan.yaml", help="the plan file (default: %(default)s)")
    reproduce.add_argument("--only", nargs="+", metavar="PART",
                           help="only these parts of the plan (e.g. baselines, scae, ablations, manifold_baseline, "
                           "scae_manifold, manifold_ablations, comparison, smoke), data sets, or cell-name "
                           "prefixes (scae/fashion)")
    reproduce.add_argument("--quick", action="store_true",
                           help="a small real run instead (SCAE-hash with a short schedule and ITQ, MNIST, 64 bits; "
                           "minutes on 2 CPU cores) into results/quick/, printing a side-by-side table")
    reproduce_mode = reproduce.add_mutually_exclusive_group()
    reproduce_mode.add_argument("--dry-run", action="store_true",
                                help="print each cell as done, stale or missing with an estimated time; run nothing")
    reproduce_mode.add_argument("--check", nargs="+", metavar="CELL",
                                help="re-run these reported cells from scratch in a temporary folder and compare "
                                "their mAP, e.g. itq/mnist/64/seed0 scae/mnist/64/seed0")
    reproduce.add_argument("--tolerance", type=float, metavar="MAP",
                           help="largest |reported - reproduced| mAP --check accepts (default: the plan's, 0.01)")
    reproduce.add_argument("--data-dir", help="data folder for every cell (default: $SCAE_HASH_DATA, then the usual places)")
    reproduce.add_argument("--worktree", metavar="DIR",
                           help="run the cells from a git worktree of HEAD at DIR (created, or moved to HEAD), "
                           "writing rows here: edits made here during the run neither enter nor stale its rows")
    reproduce.add_argument("--commit-rows", action="store_true",
                           help="commit the results folder (alone) after each finished cell, so that a killed "
                           "session keeps every finished row in git")
    reproduce.set_defaults(handler=HANDLERS["reproduce"])
    for sub in commands.choices.values():
        sub.add_argument("--verbose", action="store_true", help="also show TensorFlow's own log lines on stderr")
    return parser


def run_settings(args: argparse.Namespace, seed: int = 0) -> RunSettings:
    """The experiment layer's settings from the options every run command shares."""
    from scae_hash.experiment import RunSettings

    return RunSettings(seed=seed, split_seed=args.split_seed, split=args.split, data_dir=args.data_dir,
                       results_dir=args.results_dir, save=not args.no_save, codes_out=args.codes_out,
                       progress=not args.quiet, log=lambda message: log(args, message),
                       on_row=lambda row: emit(args, row))


def run_baseline_command(args: argparse.Namespace) -> list[dict]:
    from scae_hash.experiment import run_baselines

    settings = run_settings(args, 0 if args.seed is None else args.seed)
    return run_baselines(args.method, args.dataset, args.bits, settings, baseline_hyperparameters(args.set),
                         variant="-".join(args.set))


def baseline_hyperparameters(settings: list[str]) -> dict:
    """``NAME=VALUE`` pairs (values read as YAML scalars) for a baseline's constructor."""
    import yaml

    parsed = {}
    for setting in settings:
        name, sep, value = setting.partition("=")
        if not sep or not name.isidentifier():
            raise ScaeHashError(f"--set {setting!r}: expected NAME=VALUE")
        parsed[name] = yaml.safe_load(value)
    return parsed


def run_train_command(args: argparse.Namespace) -> list[dict]:
    from scae_hash.experiment import run_training

    return run_training(args.config, run_settings(args), seed=args.seed, bits=args.bits, overrides=args.set,
                        subset=args.subset, run_dir=args.run_dir, resume=args.resume,
                        validate_each_epoch=args.validate_each_epoch)


def run_index_command(args: argparse.Namespace) -> list[dict]:
    from scae_hash.images import display_path
    from scae_hash.indexer import IndexSettings, index_folder

    if not args.append and not (args.method or args.model):
        raise ScaeHashError("index: one of --method or --model is required (or --append to an existing index)")
    settings = IndexSettings(
        folder=str(args.folder), method=args.method, bits=args.bits, seed=args.seed,
        image_shape=(*args.size, 1 if args.grey else 3), model=args.model, rerank_model=args.rerank_model,
        append=args.append, fit_sample=args.fit_sample)
    summary = index_folder(settings, args.out, strict=args.strict, batch_size=args.batch_size,
                           progress=not args.quiet)
    what = f"added {summary.added} images ({summary.indexed} in all)" if args.append else f"indexed {summary.indexed} images"
    print(f"{what} with {summary.method} ({summary.n_bits} bits) into {display_path(summary.out)}"
          f" in {summary.seconds:.1f} s")
    if summary.skipped:
        print(f"skipped {len(summary.skipped)} unreadable file{'s' * (len(summary.skipped) > 1)} "
              f"(listed in {display_path(summary.skipped_file)})",
              file=sys.stderr)
    return []


def run_search_command(args: argparse.Namespace) -> list[dict]:
    import os

    # A few queries need no BLAS thread team, and starting one costs tens of ms on busy cores.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from scae_hash.search_command import search_command

    search_command(args.index_file, args.queries, k=args.k, radius=args.radius, rerank=args.rerank,
                   rerank_model=args.rerank_model, as_json=args.json, show_timings=args.timings)
    return []


def run_reproduce_command(args: argparse.Namespace) -> list[dict]:
    from scae_hash.reproduce import QUICK_PLAN, reproduce_command

    reproduce_command(QUICK_PLAN if args.quick else args.plan, only=args.only, dry_run=args.dry_run,
                      check=args.check, tolerance=args.tolerance, data_dir=args.data_dir,
                      worktree=args.worktree, commit_rows=args.commit_rows)
    return []


def run_serve_command(args: argparse.Namespace) -> list[dict]:
    from scae_hash.web.app import serve

    serve(args.index_file, host=args.host, port=args.port)
    return []


def run_evaluate_command(args: argparse.Namespace) -> list[dict]:
    from scae_hash.codes_file import load_codes
    from scae_hash.evaluation import score_codes

    row = score_codes(load_codes(args.codes_file, allow_overlap=args.allow_overlap), progress=not args.quiet)
    emit(args, row)
    return [row]


def emit(args: argparse.Namespace, row: dict) -> None:
    if args.json:
        ordered = {key: row[key] for key in JSON_KEYS_ORDER if key in row}
        ordered.update({key: value for key, value in row.items() if key not in ordered})
        print(json.dumps(ordered, default=float), flush=True)


def log(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def print_table(rows: list[dict], stream) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows)
    columns = [column for column in TABLE_COLUMNS if column in frame]
    print(frame[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"), file=stream)


#: Each command's handler: the entry point whose imports are a result row's code (scae_hash/code_identity.py).
HANDLERS = {"baseline": run_baseline_command, "train": run_train_command, "index": run_index_command,
            "search": run_search_command, "serve": run_serve_command, "evaluate": run_evaluate_command,
            "reproduce": run_reproduce_command}

# Commands that write nothing: their process may end without the libraries' own teardown.
READ_ONLY_COMMANDS = ("search",)


def main(argv: list[str] | None = None) -> int:
    return execute(build_parser().parse_args(argv))


def execute(args: argparse.Namespace) -> int:
    """Run a parsed command; bad input is one line on stderr and exit status 1."""
    if not args.verbose:
        from scae_hash.process import quiet_tensorflow

        quiet_tensorflow()
    try:
        rows = args.handler(args)
    except (ScaeHashError, OSError) as err:  # OSError: the file system said no (full disk, permissions)
        print(f"scae-hash: error: {one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        resume = "; resume with --resume" if args.command == "train" else ""
        print(f"scae-hash: interrupted{resume}", file=sys.stderr)
        return 130
    if rows:
        print_table(rows, sys.stderr if args.json else sys.stdout)
    return 0


def run() -> NoReturn:
    """The ``scae-hash`` command: :func:`main`, then an exit that an interrupted run cannot
    crash, and that a read-only command reaches without waiting for numpy, faiss and h5py to
    tear down (:func:`scae_hash.process.exit_without_finalizing`)."""
    args = build_parser().parse_args()
    code = execute(args)
    if code == 130 or args.command in READ_ONLY_COMMANDS:
        from scae_hash.process import exit_without_finalizing

        exit_without_finalizing(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
