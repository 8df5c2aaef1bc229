"""Kernel-differential tests: the same scenario on Linux and on netstack."""
