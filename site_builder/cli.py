"""The `maml-site` command line.

Exit status: 0 success; 2 bad usage or configuration (one line on stderr naming
the value and what is allowed; nothing written); 1 a failure during the build.
"""
from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import traceback
from pathlib import Path

from .errors import BuildFailure, ConfigError, disk_full

log = logging.getLogger("site_builder")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _parser() -> _Parser:
    from .config import CONV_MODELS, MODELS, PROFILES
    from meta.train import DEVICES

    def common(p: argparse.ArgumentParser, site: bool = False, retrain: bool = False) -> None:
        p.add_argument("--profile", default="paper",
                       help=f"training/evaluation size: {', '.join(PROFILES)} (default: paper)")
        p.add_argument("--device", default="auto",
                       help=f"{', '.join(DEVICES)} (default: auto = CUDA when available)")
        p.add_argument("--jobs", type=_integer, default=None,
                       help="models trained in parallel processes (default: min(2, CPU count))")
        p.add_argument("--seed", type=_integer, default=0, help="training seed (default: 0)")
        p.add_argument("--project", type=Path, default=None,
                       help="the project's root folder (default: the one holding the current "
                            "folder, found by its mkdocs.yml beside pyproject.toml)")
        p.add_argument("--exported", type=Path, default=None,
                       help="folder of the exported models (default: exported/ in the project)")
        if site:
            p.add_argument("--site-dir", type=Path, default=None,
                           help="where the site is written (default: site/ in the project)")
        if retrain:
            p.add_argument("--retrain", action="store_true",
                           help="train even where the exported weights are up to date")

    parser = _Parser(prog="maml-site", description="Build the MAML article site and its models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("build", help="train (cached), evaluate, export, figures, MkDocs -> site/")
    common(p, site=True, retrain=True)
    p = commands.add_parser("serve", help="build, then serve site/ on 127.0.0.1 with live reload")
    common(p, site=True, retrain=True)
    p.add_argument("--port", type=_integer, default=8000, help="port on 127.0.0.1 (default: 8000)")
    p = commands.add_parser("train", help="train one model (cached unless --retrain)")
    p.add_argument("name", metavar="NAME",
                   help=f"one of: {', '.join(trainable_models())} (the last {len(CONV_MODELS)}: "
                        f"the quiz's conv nets on the glyph alphabets)")
    common(p, retrain=True)
    p = commands.add_parser("export", help="export the ONNX graphs of the trained models")
    common(p)
    p = commands.add_parser("figures", help="render the static figures of the trained models")
    common(p)
    p = commands.add_parser("check", help="verify exported/ against its manifest; ONNX vs PyTorch")
    common(p)
    return parser


def trainable_models() -> list[str]:
    """What `maml-site train` accepts: the sinusoid models, then the conv nets."""
    from .config import CONV_MODELS, MODELS

    return [*MODELS, *CONV_MODELS]


def check_trainable(name: str) -> None:
    """A usage error naming ``name`` and every model `maml-site train` knows."""
    if name not in trainable_models():
        raise ConfigError(f"unknown model {name!r}; allowed: {', '.join(trainable_models())}")


def _options(args: argparse.Namespace):
    from .config import CONV_MODELS, MODELS, BuildOptions, find_project

    project = find_project(args.project if args.project is not None else Path.cwd(),
                           given=args.project is not None)
    given = {"profile": args.profile, "device": args.device, "seed": args.seed,
             "retrain": getattr(args, "retrain", False), "repo_root": project,
             "exported": project / "exported", "site_dir": project / "site"}
    if args.jobs is not None:
        given["jobs"] = args.jobs
    if args.exported is not None:
        given["exported"] = args.exported
    if getattr(args, "site_dir", None) is not None:
        given["site_dir"] = args.site_dir
    options = BuildOptions(**given).validate()
    if (args.command in ("build", "serve") and not options.retrain
            and not (options.exported / "manifest.json").is_file()):
        # Never start minutes of training by surprise (a mistyped --exported).
        raise ConfigError(
            f"exported folder {str(options.exported)!r} holds no models (no manifest.json), so "
            f"the build would first train all {len(MODELS) + len(CONV_MODELS)} from scratch "
            f"(minutes on a CPU with --profile paper: about 13 on 2 cores); allowed: --retrain "
            f"to train them, or "
            f"--exported a folder that holds models")
    return options


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The arguments; an unknown option is one line naming it and the command's options."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = parser._subparsers._group_actions[0].choices[args.command]
        allowed = [o for a in command._actions for o in a.option_strings if o.startswith("--")]
        what = "option" if extra[0].startswith("-") else "argument"
        parser.error(f"unknown {what} {extra[0]!r} for {args.command}; allowed: {', '.join(allowed)}")
    return args


def run(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from . import build as pipeline

    if args.command == "train":
        check_trainable(args.name)
    if args.command == "serve":
        from .serve import check_port

        check_port(args.port)          # before anything else is checked or started
    options = _options(args)
    if args.command == "build":
        pipeline.build(options)
    elif args.command == "serve":
        from .serve import serve

        serve(options, port=args.port)
    elif args.command == "train":
        report = pipeline.run_stages(options, [args.name], stages=("train",))
        if report.stages_run("train"):
            log.info("new weights for %s: run `maml-site build` to evaluate, export and "
                     "publish them", args.name)
        else:
            log.info("%s is up to date (use --retrain to train it anyway)", args.name)
    elif args.command in ("export", "figures"):
        pipeline.run_stages(options, stages=(args.command,))
    elif args.command == "check":
        from .check import check

        check(options.exported, options.repo_root)
        log.info("check passed")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    from .build import configure_logging

    configure_logging()
    # SIGTERM stops the build like Ctrl+C: temporary files and folders are
    # removed and worker processes terminated on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(argv)
    except ConfigError as exc:
        print(f"maml-site: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BuildFailure as exc:
        print(f"maml-site: failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            traceback.print_exc()
            print("maml-site: failed with an unexpected error (above)", file=sys.stderr)
            return EXIT_FAILURE
        print(f"maml-site: failed: {disk_full(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("maml-site: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print("maml-site: failed with an unexpected error (above)", file=sys.stderr)
        return EXIT_FAILURE


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
