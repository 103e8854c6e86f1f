"""Keep a forked child process from hanging in torch.

``nlp.pipe(texts, n_process=2)`` starts its workers with the platform's
default method, "fork" on Linux. A child forked after torch has run its
OpenMP thread pool (any prediction does) hangs on its first parallel
operation: the pool's threads are not copied into the child. torch's own
DataLoader meets the same problem by running its forked workers on one
thread; this module does the same for every process forked once a
``mlbert_textcat`` component exists. A child that wants more threads can
call ``torch.set_num_threads`` itself (safe only if the parent had not used
the pool before the fork).
"""
import os

_installed = False


def install_fork_guard() -> None:
    """Make every child forked from now on run torch on one thread
    (once per process; later calls do nothing)."""
    global _installed
    if _installed or not hasattr(os, "register_at_fork"):  # no fork on Windows
        return
    os.register_at_fork(after_in_child=_one_torch_thread)
    _installed = True


def _one_torch_thread() -> None:
    import torch

    if torch.get_num_threads() > 1:
        torch.set_num_threads(1)
