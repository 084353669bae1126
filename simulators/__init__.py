"""Simulated physical learning machines that implement the contract of :mod:`aeqprop.system`."""
