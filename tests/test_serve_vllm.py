"""``culturesim serve vllm``: the command line it builds, and its message without vLLM.

vLLM needs a CUDA GPU and is not installed on test machines; the command is checked
by parsing it back with an independent parser of vllm's flags (argparse here)."""

from __future__ import annotations

import argparse
import shlex
import shutil

import pytest

from culturesim.cli import main, parser, vllm_command


def parsed(argv: list[str]) -> argparse.Namespace:
    """Read a ``vllm serve`` command line the way vllm's own argparse would."""
    assert argv[:2] == ["vllm", "serve"]
    p = argparse.ArgumentParser()
    p.add_argument("model")
    for flag in ("--host", "--served-model-name", "--generation-config"):
        p.add_argument(flag)
    for flag in ("--port", "--max-model-len", "--max-num-seqs", "--max-num-batched-tokens", "--seed",
                 "--tensor-parallel-size"):
        p.add_argument(flag, type=int)
    p.add_argument("--gpu-memory-utilization", type=float)
    p.add_argument("--enable-prefix-caching", action="store_true")
    p.add_argument("--dtype")
    return p.parse_args(argv[2:])


def test_defaults_suit_many_short_requests():
    args = parser().parse_args(["serve", "vllm", "--model", "Qwen/Qwen2.5-0.5B-Instruct"])
    got = parsed(vllm_command(args))
    assert got.model == got.served_model_name == "Qwen/Qwen2.5-0.5B-Instruct"
    assert got.enable_prefix_caching and got.generation_config == "vllm"
    assert got.max_num_seqs == 512 and got.max_model_len == 4096 and got.gpu_memory_utilization == 0.9
    assert (got.host, got.port) == ("127.0.0.1", 8000)


def test_options_and_extra_arguments_pass_through():
    args = parser().parse_args(["serve", "vllm", "--model", "m", "--alias", "small", "--port", "9001",
                                "--gpu-memory-utilization", "0.5", "--max-num-seqs", "64", "--", "--dtype", "half"])
    got = parsed(vllm_command(args))
    assert (got.served_model_name, got.port, got.gpu_memory_utilization, got.max_num_seqs, got.dtype) == \
        ("small", 9001, 0.5, 64, "half")


def test_dry_run_prints_the_command(capsys):
    assert main(["serve", "vllm", "--model", "m", "--port", "8123", "--dry-run"]) == 0
    printed = shlex.split(capsys.readouterr().out)
    assert parsed(printed).port == 8123


@pytest.mark.skipif(shutil.which("vllm") is not None, reason="vllm is installed here")
def test_missing_vllm_is_a_clear_error(capsys):
    assert main(["serve", "vllm", "--model", "m"]) == 2
    err = capsys.readouterr().err
    assert "vllm is not installed" in err and "vllm serve m" in err
