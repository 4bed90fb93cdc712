"""What the CPU backend chose on this machine."""

from .._C import _cpu_capability


def capability():
    """The kernel instruction set in use: 'avx512', 'avx2' or 'base' (FASTKERN_CPU_ISA can force a lower one)."""
    return _cpu_capability()
