"""One spelling and one default per option across the verbs, and the library's defaults in the
CLI: ``--device`` is "auto" everywhere, the seed is ``--seed`` everywhere, and a verb's defaults
and help texts say what the library it calls does."""

from __future__ import annotations

import argparse

import pytest

from specsift.cli.main import build_parser


def _verbs(parser=None, path=()):
    """(verb path, parser) of every verb and sub-verb."""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _verbs(sub, (*path, name))


def _options(parser):
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def _parser(*path):
    return dict(_verbs())[path]


def test_device_defaults_to_auto_and_the_seed_is_seed_in_every_verb():
    devices = seeds = 0
    for path, parser in _verbs():
        for action in _options(parser):
            names = " ".join(action.option_strings)
            if action.dest == "device":
                devices += 1
                assert action.default == "auto", (path, names)
            if any(word in action.dest for word in ("seed", "random_state", "rng")):
                seeds += 1
                assert action.option_strings == ["--seed"] and action.dest == "seed", (path, names)
    assert devices >= 10 and seeds >= 5


def test_train_ae_help_gives_each_sizes_rest_step():
    from specsift.models.configs import SIZES

    action = next(a for a in _options(_parser("train-ae")) if a.dest == "rest_step")
    for name, size in SIZES.items():
        assert f"{size['rest_step']:g} {name}" in action.help
    size = next(a for a in _options(_parser("train-ae")) if a.dest == "size")
    assert tuple(size.choices) == tuple(SIZES)


@pytest.mark.parametrize("path, target, renamed", [
    (("train-ae",), "specsift.models.training:AutoencoderTrainer", {"rest_step": None}),
    (("train-flow",), "specsift.models.flow:LatentFlow", {"batch_size": None}),
    # the library's inference functions run where they are told (cpu by default); the CLI
    # resolves "auto" before it calls them
    (("train-flow",), "specsift.models.flow:collect_latents", {"device": None}),
    # (and evaluate-ae measures the refined fit the catalogue uses unless told otherwise)
    (("evaluate-ae",), "specsift.models.evaluation:evaluate", {"device": None,
                                                               "refine_steps": None}),
    (("rsca", "fit"), "specsift.metric.fitting:fit_rsca",
     {"paper": None, "abundances": None}),
    (("rsca", "report"), "specsift.metric.experiments:run_report",
     {"paper": None, "truth": None}),
])
def test_verb_defaults_are_the_librarys(path, target, renamed):
    """Where a verb repeats a default of the function it calls, the two agree."""
    import importlib
    import inspect

    module, name = target.split(":")
    signature = inspect.signature(getattr(importlib.import_module(module), name))
    compared = 0
    for action in _options(_parser(*path)):
        param = renamed.get(action.dest, action.dest)
        if param is None or param not in signature.parameters:
            continue
        default = signature.parameters[param].default
        if default is inspect.Parameter.empty:
            continue
        cli = tuple(action.default) if isinstance(action.default, list) else action.default
        assert cli == default, (path, action.dest, cli, default)
        compared += 1
    assert compared >= 1, path


def test_every_library_function_that_takes_a_device_defaults_to_the_one_default():
    """The CLI's ``--device`` default and every function's ``device`` default are one value,
    :data:`specsift.runtime.DEFAULT_DEVICE`: a script that calls the library gets the GPU when
    the command line would."""
    import importlib
    import inspect
    import pkgutil

    import specsift
    from specsift.runtime import DEFAULT_DEVICE

    checked, wrong = 0, []
    for info in pkgutil.walk_packages(specsift.__path__, "specsift."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            members = [obj] + ([m for m in vars(obj).values() if inspect.isfunction(m)
                                or isinstance(m, (classmethod, staticmethod))]
                               if inspect.isclass(obj) else [])
            for member in members:
                func = getattr(member, "__func__", member)
                if not callable(func):
                    continue
                try:
                    parameter = inspect.signature(func).parameters.get("device")
                except (TypeError, ValueError):
                    continue
                if parameter is None or parameter.default is inspect.Parameter.empty:
                    continue
                checked += 1
                if parameter.default not in (DEFAULT_DEVICE, None):
                    wrong.append(f"{module.__name__}.{getattr(func, '__qualname__', name)}")
    assert checked >= 15
    assert not wrong, wrong


def test_the_cli_builds_every_verb_without_importing_torch():
    """The verbs read the trainers' defaults from torch-free modules (models.defaults,
    metric.defaults), so `specsift --help` and the data verbs do not pay torch's import."""
    import subprocess
    import sys

    code = ("import sys; from specsift.cli.main import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
